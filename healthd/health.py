"""The health state machine of one checked real: pure, no I/O, no clock of its own.

`observe` folds one check Result into a Health value and says whether that was a transition;
`force`/`release` put a real into and out of maintenance. `check_key` names the shared health
entry of a (virtual, real) pair, so a real listed in several virtuals is checked once.

Transitions (after `observe(h, result, failurecount=F, rise=R)`), in the manner of keepalived's
perform_svr_state table:

    state  forced  result  counters after                          new state  transition
    -----  ------  ------  --------------------------------------  ---------  ----------
    up     no      up      failures=0, successes+1                 up         -
    up     no      down    failures+1, successes=0; failures <  F  up         -  (soft failure)
    up     no      down    failures+1, successes=0; failures >= F  down       down(reason)
    down   no      down    failures+1, successes=0                 down       -
    down   no      up      successes+1, failures=0; successes <  R down       -
    down   no      up      successes+1, failures=0; successes >= R up         up("ok")
    any    yes     any     counters updated as above               down       -
    any    any     local   counters kept, local_errors+1           unchanged  -  (healthd's
                                                                                  own failure)
    up     -> force(reason)                                        down       down(reason)
    down   -> force(reason)                                        down       -  (now forced)
    forced -> release()                                            down       -  (next success
                                                                                  counts to R)

A `local` result (reason local_error: healthd could not run the check, out of descriptors,
buffers or memory, or the check crashed) says nothing about the real: it is kept as the last
result and counted in local_errors, never in failures, so healthd never removes (or
restores) a real because it failed itself.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from dataclasses import dataclass

from checks.base import Reason, Result, host_text
from healthd.model import CheckSpec, CheckType, Config, IPAddress, Proto, Real, Virtual


class Kind(enum.StrEnum):
    """Direction of a transition."""

    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Health:
    """What is known about one checked real: its state, its streaks and the last result."""

    up: bool
    failures: int = 0  # consecutive failed checks (keeps counting while down)
    successes: int = 0  # consecutive successful checks
    last: Result | None = None
    since: float = 0.0  # when `up` last changed (or the entry was created)
    forced: str | None = None  # why the real is held down regardless of checks ("maintenance")
    local_errors: int = 0  # consecutive results healthd could not get (reason local_error)

    @property
    def is_up(self) -> bool:
        """Return True when the real may carry traffic: up and not forced down."""
        return self.up and self.forced is None


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state, for the one log line (and the hooks) it causes."""

    kind: Kind
    reason: str  # the Result's reason token, "ok" for up, or the forcing reason
    detail: str = ""
    failures: int = 0  # consecutive failures that took the real down (0 for up / forced)

    def __str__(self) -> str:
        return f"{self.kind} reason={self.reason}"


def initial(up: bool, *, now: float = 0.0) -> Health:
    """Return the health of a real not yet checked: up if it already carries traffic."""
    # ldirectord: reals present in the kernel with weight > 0 at start are taken as up (ld_start)
    return Health(up=up, since=now)


def observe(
    health: Health, result: Result, *, failurecount: int, rise: int = 1, now: float
) -> tuple[Health, Transition | None]:
    """Fold one check result into `health`; return the new health and the transition, if any."""
    if result.reason == Reason.LOCAL_ERROR:
        # healthd's own failure: the real's streaks stand, no transition either way
        counts = (health.failures, health.successes)
        return Health(
            health.up, *counts, result, health.since, health.forced, health.local_errors + 1
        ), None
    if result.up:
        successes, failures = health.successes + 1, 0
    else:
        successes, failures = 0, health.failures + 1
    # built directly, not with dataclasses.replace: this runs once per check result
    up, since, forced = health.up, health.since, health.forced
    transition = None
    if forced is None and up and not result.up and failures >= max(failurecount, 1):
        up, since = False, now
        transition = Transition(Kind.DOWN, result.reason, result.detail, failures)
    elif forced is None and not up and result.up and successes >= max(rise, 1):
        # ldirectord: one success restores a down real (rise=1 keeps that)
        up, since = True, now
        transition = Transition(Kind.UP, result.reason)
    return Health(up, failures, successes, result, since, forced), transition


def force(health: Health, reason: str, *, now: float) -> tuple[Health, Transition | None]:
    """Hold the real down for `reason` (maintenance); a transition only if it was up."""
    if health.forced == reason:
        return health, None
    was_up = health.up
    new = dataclasses.replace(
        health, up=False, forced=reason, successes=0, since=now if was_up else health.since
    )
    return new, (Transition(Kind.DOWN, reason) if was_up else None)


def release(health: Health) -> Health:
    """End a forced-down period; the real stays down until its checks bring it back."""
    # ldirectord: after the maintenance file goes, the next successful check restores the real
    if health.forced is None:
        return health
    return dataclasses.replace(health, forced=None, successes=0)


# --- which reals share one health entry --------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckKey:
    """Identity of one health entry: what is checked, how, and with which state parameters.

    Two (virtual, real) pairs with equal keys are checked once per interval and share their
    failure count. `virtual` is set only for checks that see the virtual (external commands
    receive its address and port), so those are never shared across virtuals.
    """

    address: IPAddress
    port: int  # the real's configured port (0 when omitted)
    protocol: Proto  # connect on udp virtuals pings, so the protocol is part of the check
    check: CheckSpec  # with the real's request/receive overrides applied
    failurecount: int = 1
    rise: int = 1
    checkinterval: float = 10.0
    virtual: str | None = None
    _hash: int = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # a key is hashed on every slot, maintenance and reconcile lookup; its CheckSpec
        # makes that the cost of ~20 fields each time, so hash once
        fields = (self.address, self.port, self.protocol, self.check, self.failurecount)
        rest = (self.rise, self.checkinterval, self.virtual)
        object.__setattr__(self, "_hash", hash((*fields, *rest)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return f"{host_text(self.address)}:{self.port}"


_SEES_VIRTUAL = frozenset({CheckType.EXTERNAL, CheckType.EXTERNAL_PERL})


def effective_check(virtual: Virtual, real: Real) -> CheckSpec:
    """Return the virtual's check with the real's request/receive overrides applied."""
    spec = virtual.check
    if real.request is not None:
        spec = dataclasses.replace(spec, request=real.request)
    if real.receive is not None:
        spec = dataclasses.replace(spec, receive=real.receive)
    return spec


def check_key(virtual: Virtual, real: Real) -> CheckKey:
    """Return the key of the health entry that (virtual, real) reads and updates."""
    spec = effective_check(virtual, real)
    return CheckKey(
        address=real.address,
        port=real.port,
        protocol=virtual.proto,
        check=spec,
        failurecount=virtual.failurecount,
        rise=virtual.rise,
        checkinterval=virtual.checkinterval,
        virtual=virtual.name if spec.checktype in _SEES_VIRTUAL else None,
    )


def pairs(config: Config) -> Iterator[tuple[Virtual, Real]]:
    """Yield every (virtual, real) pair of the config in file order."""
    for virtual in config.virtuals:
        for real in virtual.reals:
            yield virtual, real


def check_groups(config: Config) -> dict[CheckKey, list[tuple[Virtual, Real]]]:
    """Group the config's (virtual, real) pairs by shared health entry, in file order."""
    groups: dict[CheckKey, list[tuple[Virtual, Real]]] = {}
    for virtual, real in pairs(config):
        groups.setdefault(check_key(virtual, real), []).append((virtual, real))
    return groups
