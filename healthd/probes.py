"""From the config model to something runnable: a Probe per (virtual, real) check.

Translates CheckSpec + Real + Virtual into a check kind, its options, its Target and its
timeout, following ldirectord's _check_real (ldirectord.md §7, §8.1): negotiate runs the
service's check, connect on a UDP virtual pings, checktype=N alternates negotiate and connect.
Runs no check itself and keeps no health; the scheduler runs probes, the engine judges them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

import checks
from checks.base import Check, CheckContext, CheckOptionError, Result, Target
from healthd.errors import Diagnostic
from healthd.model import NO_SERVICE, CheckSpec, CheckType, Config, Proto, Real, Virtual

CheckFactory = Callable[[str], type[Check]]

# what a missing optional check package is fixed with
INSTALL_HINT: Final = "(a dependency of healthd: install that package, or reinstall healthd)"

# ldirectord: the combined counter starts high so the first round negotiates (l.2920)
_COMBINED_START: Final = 999999


class Probe(Protocol):
    """One configured check of one real, run once per round by the scheduler."""

    @property
    def kind(self) -> str: ...

    @property
    def timeout(self) -> float: ...

    async def run(self) -> Result: ...


def check_port(virtual: Virtual, real: Real) -> int:
    """Return the port to check: checkport, else the real's port, else the service's default."""
    spec = virtual.check
    if spec.checkport is not None:
        return spec.checkport
    if real.port > 0:
        return real.port
    return checks.default_port(spec.service)  # ldirectord: ld_checkport (l.1927)


def target(virtual: Virtual, real: Real) -> Target:
    """Return the Target a check of this real sees."""
    return Target(
        address=real.address,
        port=check_port(virtual, real),
        real_port=real.port,
        virtual_address=virtual.address,
        virtual_port=virtual.port,
        fwmark=virtual.fwmark,
        protocol=str(virtual.proto),
    )


def options(spec: CheckSpec, real: Real) -> dict[str, str]:
    """Return the check options as strings, with the real's request/receive overrides merged."""
    opts = {
        "service": str(spec.service),
        "request": spec.request if real.request is None else real.request,
        "receive": spec.receive if real.receive is None else real.receive,
        "httpmethod": spec.httpmethod,
        "login": spec.login,
        "passwd": spec.passwd,
        "database": spec.database,
        "secret": spec.secret,
        "checkcommand": spec.checkcommand,
        "checkcount": str(spec.checkcount),
        "tls_verify": "yes" if spec.tls_verify else "no",
    }
    for key, value in (
        ("virtualhost", spec.virtualhost),
        ("tls_cafile", spec.tls_cafile),
        ("tls_hostname", spec.tls_hostname),
    ):
        if value is not None:
            opts[key] = value
    return opts


def connect_kind(virtual: Virtual) -> str:
    """Return the kind a connect check runs: ping on UDP virtuals, as ldirectord does (§7)."""
    # ldirectord: _check_real runs check_ping for checktype=connect on udp virtuals
    return "ping" if virtual.proto is Proto.UDP else "connect"


def kinds(virtual: Virtual) -> tuple[str, ...]:
    """Return the check kinds a virtual's reals run (empty: no check, e.g. service=none)."""
    spec = virtual.check
    match spec.checktype:
        case CheckType.ON | CheckType.OFF:
            return ()
        case CheckType.CONNECT:
            return (connect_kind(virtual),)
        case CheckType.PING:
            return ("ping",)
        case CheckType.EXTERNAL | CheckType.EXTERNAL_PERL:
            return (str(spec.checktype),)
        case CheckType.COMBINED:
            neg = () if spec.service == NO_SERVICE else (str(spec.service),)
            return (*neg, connect_kind(virtual))
        case _:
            return () if spec.service == NO_SERVICE else (str(spec.service),)


def describe(virtual: Virtual) -> str:
    """Return the check name used in logs: the kind, `on`/`off`, `none`, or `combined/N:kind`."""
    spec = virtual.check
    if spec.checktype in (CheckType.ON, CheckType.OFF):
        return str(spec.checktype)
    if spec.checktype is CheckType.COMBINED:
        return f"combined/{spec.combined_every}:{spec.service}"
    found = kinds(virtual)
    return found[0] if found else "none"


@dataclass(slots=True)
class SingleProbe:
    """Runs one configured check against one target."""

    kind: str
    check: Check
    target: Target
    timeout: float

    async def run(self) -> Result:
        return await self.check.check(self.target)


@dataclass(slots=True)
class ConstantProbe:
    """Reports the same result every round: service=none (always up) or an unusable check."""

    kind: str
    result: Result
    timeout: float = 1.0

    async def run(self) -> Result:
        return self.result


@dataclass(slots=True)
class CombinedProbe:
    """checktype=N: negotiate when the counter reaches N, connect in between (ldirectord §7)."""

    kind: str
    negotiate: Probe
    connect: Probe
    every: int
    counter: int = _COMBINED_START

    @property
    def timeout(self) -> float:
        return max(self.negotiate.timeout, self.connect.timeout)

    async def run(self) -> Result:
        # ldirectord: counter >= N negotiates (success resets it to 0, failure leaves it, so
        # the next round negotiates again); otherwise connect (success +1, failure forces a
        # negotiate next round)
        if self.counter >= self.every:
            result = await self.negotiate.run()
            if result.up:
                self.counter = 0
            return result
        result = await self.connect.run()
        self.counter = self.counter + 1 if result.up else _COMBINED_START
        return result


def run_limit(kind: str, spec: CheckSpec, timeout: float) -> float:
    """Return how long one run of a check may take: ping makes `checkcount` attempts."""
    # ldirectord: check_ping tries checkcount times, each ping bounded by checktimeout (§7)
    return timeout * max(spec.checkcount, 1) if kind == "ping" else timeout


def _single(kind: str, virtual: Virtual, real: Real, timeout: float, load: CheckFactory) -> Probe:
    """Build one check of `kind`; a check that cannot be built reports down every round."""
    try:
        cls = load(kind)
        check = cls.from_options(options(virtual.check, real), CheckContext(timeout=timeout))
    except CheckOptionError as exc:
        return ConstantProbe(kind, Result.down("config_error", str(exc)))
    except (ImportError, LookupError) as exc:
        # an unknown kind or a missing optional dependency (e.g. no MySQL driver installed)
        return ConstantProbe(kind, Result.down("check_unavailable", str(exc)))
    return SingleProbe(kind, check, target(virtual, real), run_limit(kind, virtual.check, timeout))


def build(virtual: Virtual, real: Real, load: CheckFactory) -> Probe | None:
    """Return the probe for a real of a virtual, or None when its checktype is on or off."""
    spec = virtual.check
    if spec.checktype in (CheckType.ON, CheckType.OFF):
        return None
    if spec.checktype is CheckType.COMBINED:
        connect = _single(connect_kind(virtual), virtual, real, spec.checktimeout, load)
        if spec.service == NO_SERVICE:
            negotiate: Probe = ConstantProbe("none", Result.ok("service=none"))
        else:
            negotiate = _single(str(spec.service), virtual, real, spec.negotiatetimeout, load)
        return CombinedProbe(describe(virtual), negotiate, connect, spec.combined_every)
    found = kinds(virtual)
    if not found:
        # ldirectord: service=none (unknown port, fwmark) is never checked and always up
        return ConstantProbe("none", Result.ok("service=none"))
    negotiating = spec.checktype is CheckType.NEGOTIATE
    timeout = spec.negotiatetimeout if negotiating else spec.checktimeout
    return _single(found[0], virtual, real, timeout, load)


def validate(config: Config, load: CheckFactory) -> list[Diagnostic]:
    """Load every check kind the configuration runs; report each one that cannot be loaded.

    A missing optional package (a database driver, the LDAP client) is an error at the
    virtual's line, so healthd refuses the configuration instead of failing at the first
    check. Check options are not judged here: a check that refuses its options keeps its
    reals down at run time (reason `config_error`), as ldirectord does.
    """
    found: list[Diagnostic] = []
    for virtual in config.virtuals:
        for kind in kinds(virtual):
            try:
                load(kind)
            except (ImportError, LookupError) as exc:
                found.append(Diagnostic(virtual.loc, f"{exc} {INSTALL_HINT}"))
    return found
