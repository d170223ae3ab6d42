"""Builder: RawConfig → the frozen Config model with every effective value filled in.

Applies ldirectord's defaults, global → virtual inheritance, the checktimeout and
negotiatetimeout cross-fallback, the service guessed from the port, and resolves names
through the injected Resolver (its only I/O). Semantic errors are collected, not raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, TypeVar

import checks
from healthd.config import cluster
from healthd.config import values as v
from healthd.config.parser import RawConfig, RawVirtual, Setting
from healthd.config.reals import MAX_RANGE, duplicate
from healthd.errors import Diagnostic
from healthd.location import Location
from healthd.model import (
    NO_SERVICE,
    Alerts,
    AlertStatus,
    CheckSpec,
    CheckType,
    Config,
    Fallback,
    Forward,
    IPAddress,
    Proto,
    Real,
    ServiceName,
    Virtual,
)

if TYPE_CHECKING:
    from healthd.config.resolve import Resolver

T = TypeVar("T")

DEFAULT_CHECKTIMEOUT = 5.0
DEFAULT_NEGOTIATETIMEOUT = 30.0


def guessed_service(port: int | None) -> ServiceName:
    """Return the service ldirectord guesses from a virtual's port (ld_port_to_service)."""
    return ServiceName(checks.service_on(port or 0) or NO_SERVICE)


def get(settings: dict[str, Setting], key: str, kind: type[T]) -> T | None:
    """Return the value of `key` if it is set (and of the expected type), else None."""
    setting = settings.get(key)
    if setting is None:
        return None
    assert isinstance(setting.value, kind), (key, setting.value)
    return setting.value


@dataclass(slots=True)
class _Builder:
    raw: RawConfig
    resolver: Resolver
    hostname: str
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, loc: Location, message: str, severity: str = "error") -> None:
        self.diagnostics.append(Diagnostic(loc, message, severity))

    def glob(self, key: str, kind: type[T], default: T) -> T:
        value = get(self.raw.settings, key, kind)
        return default if value is None else value


def build(raw: RawConfig, resolver: Resolver, hostname: str) -> tuple[Config, list[Diagnostic]]:
    """Return the Config and every diagnostic found.

    With errors the Config holds only the virtuals that built (the caller refuses it); it
    is returned so later checks still report what they find in those.
    """
    b = _Builder(raw, resolver, hostname, list(raw.diagnostics))
    _global_fallbacks(b)
    virtuals: list[Virtual] = []
    seen: dict[str, int] = {}
    for rv in raw.virtuals:
        built = _virtual(b, rv)
        if built is None:
            continue
        if built.name in seen:
            b.error(
                rv.loc,
                f"duplicate virtual server {built.name} (first defined at line {seen[built.name]})",
            )
        seen.setdefault(built.name, rv.loc.line)
        virtuals.append(built)
    config = Config(
        path=raw.path,
        virtuals=tuple(virtuals),
        checkinterval=b.glob("checkinterval", float, 10.0),
        autoreload=b.glob("autoreload", bool, False),
        callback=get(raw.settings, "callback", str),
        logfile=b.glob("logfile", str, "/var/log/ldirectord.log"),
        execute=tuple(raw.execute),
        fork=b.glob("fork", bool, False),
        supervised=b.glob("supervised", bool, False),
        readdquiescent=b.glob("readdquiescent", bool, False),
        emailalertfrom=get(raw.settings, "emailalertfrom", str),
        maintenancedir=get(raw.settings, "maintenancedir", str),
        resync_interval=b.glob("resync_interval", float, 30.0),
        max_in_flight=b.glob("max_in_flight", int, 256),
        http_listen=get(raw.settings, "http_listen", tuple),
        state_file=get(raw.settings, "state_file", str),
        syncd=cluster.syncd(raw.settings, b.resolver, b.error),
        command_user=get(raw.settings, "command_user", str),
    )
    return config, b.diagnostics


def _global_fallbacks(b: _Builder) -> None:
    """Resolve a global fallback's host once, so its error shows even if no virtual builds."""
    for key, family in (("fallback", 4), ("fallback6", 6)):
        setting = b.raw.settings.get(key)
        if setting is not None:
            assert isinstance(setting.value, v.RawFallback)
            _address(b, setting.value.target, family, setting.loc)


def _at(loc: Location, part: v.Part) -> Location:
    return Location(loc.path, loc.line, loc.col + part.offset, max(len(part.text), 1))


@dataclass(frozen=True, slots=True)
class _Eff:
    """Lookup of an effective value: the virtual's setting, else the global one."""

    b: _Builder
    rv: RawVirtual

    def __call__(self, key: str, kind: type[T], default: T) -> T:
        value = get(self.rv.settings, key, kind)
        return self.b.glob(key, kind, default) if value is None else value


def _inherit(b: _Builder, rv: RawVirtual) -> _Eff:
    """Return a lookup of the effective value: the virtual's, else the global one."""
    return _Eff(b, rv)


def _protocol(b: _Builder, rv: RawVirtual, head: v.VirtualHead) -> Proto:
    written = get(rv.settings, "protocol", Proto)
    loc = rv.settings["protocol"].loc if written is not None else rv.loc
    if head.fwmark is not None:
        if written not in (None, Proto.FWM):
            b.error(loc, "protocol must be fwm if the virtual service is a firewall mark")
        return Proto.FWM
    if written is Proto.FWM:
        b.error(
            loc, "protocol must be tcp, udp or sctp if the virtual service is an address and port"
        )
        return Proto.TCP
    if written is not None:
        return written
    assert head.target is not None
    assert head.target.port is not None
    # ldirectord: udp when the port is written as 53 or domain (before resolution)
    return Proto.UDP if head.target.port.text in ("53", "domain") else Proto.TCP


def _address(b: _Builder, hp: v.HostPort, family: int, loc: Location) -> IPAddress | None:
    if hp.address is not None:
        return hp.address
    found = b.resolver.host(hp.host.text, family)
    if found is None:
        b.error(
            _at(loc, hp.host), f"cannot resolve host {hp.host.text!r} to an IPv{family} address"
        )
    return found


def _port(b: _Builder, part: v.Part, proto: Proto, loc: Location) -> int | None:
    if v.is_digits(part.text):
        return int(part.text)
    name = "tcp" if proto is Proto.FWM else proto.value
    found = b.resolver.service(part.text, name)
    if found is None:
        b.error(
            _at(loc, part), f"unknown service name {part.text!r} for {name} (not in /etc/services)"
        )
    return found


def _virtual(b: _Builder, rv: RawVirtual) -> Virtual | None:
    head = rv.head
    if head is None:
        # reported; the reals are still resolved so none of their errors goes unreported
        _reals(b, rv, get(rv.settings, "protocol", Proto) or Proto.TCP, 0, True)
        return None
    eff = _inherit(b, rv)
    proto = _protocol(b, rv, head)
    address: IPAddress | None = None
    port = 0
    if head.target is not None:
        assert head.target.port is not None
        address = _address(b, head.target, rv.family, rv.loc)
        port = _port(b, head.target.port, proto, rv.loc) or 0
    _advise(b, rv, proto)
    reals = _reals(b, rv, proto, port, head.fwmark is not None)
    fallback = _fallback(b, rv, proto, port)
    if head.target is not None and address is None:
        return None  # reported; the reals and fallback were still checked above
    return Virtual(
        proto=proto,
        address=address,
        port=port,
        fwmark=head.fwmark or 0,
        family=rv.family,
        scheduler=get(rv.settings, "scheduler", str) or "wrr",
        persistent=get(rv.settings, "persistent", int),
        netmask=get(rv.settings, "netmask", str),
        ops=bool(get(rv.settings, "ops", bool)) and proto is Proto.UDP,
        schedflags=get(rv.settings, "schedflags", tuple) or (),
        reals=reals,
        check=_check(b, rv, port if head.fwmark is None else None),
        checkinterval=eff("checkinterval", float, 10.0),
        failurecount=eff("failurecount", int, 1),
        rise=eff("rise", int, 1),
        quiescent=eff("quiescent", bool, False),  # ldirectord: the code's default is no
        cleanstop=eff("cleanstop", bool, True),
        fallback=fallback,
        fallbackcommand=eff("fallbackcommand", str, "") or None,
        alerts=_alerts(eff),
        monitorfile=get(rv.settings, "monitorfile", str),
        servicename=get(rv.settings, "servicename", str),
        comment=get(rv.settings, "comment", str),
        announce=cluster.announce(rv.settings, b.resolver, b.error, fwmark=head.fwmark is not None),
        loc=rv.loc,
    )


def _advise(b: _Builder, rv: RawVirtual, proto: Proto) -> None:
    """Warn about settings that ldirectord silently ignores."""
    if get(rv.settings, "ops", bool) and proto is not Proto.UDP:
        b.error(rv.settings["ops"].key_loc, "ops has no effect unless protocol is udp", "warning")
    if "netmask" in rv.settings and "persistent" not in rv.settings:
        b.error(
            rv.settings["netmask"].key_loc, "netmask has no effect without persistent", "warning"
        )


def _timeouts(b: _Builder, rv: RawVirtual) -> tuple[float, float]:
    """Return (checktimeout, negotiatetimeout) with ldirectord's cross-fallback (ld_setup)."""
    vct = get(rv.settings, "checktimeout", float)
    vnt = get(rv.settings, "negotiatetimeout", float)
    gct = get(b.raw.settings, "checktimeout", float)
    gnt = get(b.raw.settings, "negotiatetimeout", float)
    ct = next(t for t in (vct, vnt, gct, gnt, DEFAULT_CHECKTIMEOUT) if t is not None)
    nt = next(t for t in (vnt, vct, gnt, gct, DEFAULT_NEGOTIATETIMEOUT) if t is not None)
    return ct, nt


def _check(b: _Builder, rv: RawVirtual, port: int | None) -> CheckSpec:
    s = rv.settings
    eff = _inherit(b, rv)
    checktype, every = get(s, "checktype", tuple) or (CheckType.NEGOTIATE, 0)
    explicit = get(s, "service", str)
    service = ServiceName(explicit) if explicit else guessed_service(port)
    # ldirectord: these defaults apply only when service= is written out
    login = "anonymous" if explicit == "ftp" else ""
    login = f"ldirectord@{b.hostname}" if explicit == "sip" else login
    passwd = f"ldirectord@{b.hostname}" if explicit == "ftp" else ""
    checktimeout, negotiatetimeout = _timeouts(b, rv)
    return CheckSpec(
        checktype=checktype,
        service=service,
        combined_every=every,
        checkport=get(s, "checkport", int),
        request=get(s, "request", str) or "/",
        receive=get(s, "receive", str) or "",
        httpmethod=get(s, "httpmethod", str) or "GET",
        virtualhost=get(s, "virtualhost", str),
        login=get(s, "login", str) or login,
        passwd=get(s, "passwd", str) or passwd,
        database=get(s, "database", str) or "",
        secret=get(s, "secret", str) or "",
        checkcommand=get(s, "checkcommand", str) or "/bin/true",
        checktimeout=checktimeout,
        negotiatetimeout=negotiatetimeout,
        checkcount=eff("checkcount", int, 1),
        tls_verify=eff("tls_verify", bool, False),
        tls_cafile=eff("tls_cafile", str, "") or None,
        tls_hostname=eff("tls_hostname", str, "") or None,
    )


def _alerts(eff: _Eff) -> Alerts:
    return Alerts(
        emailalert=eff("emailalert", tuple, ()),
        emailalertfreq=eff("emailalertfreq", int, 0),
        emailalertstatus=eff("emailalertstatus", frozenset, frozenset(AlertStatus)),
        smtp=eff("smtp", str, "") or None,
    )


def _fallback(b: _Builder, rv: RawVirtual, proto: Proto, vport: int) -> Fallback | None:
    key = "fallback6" if rv.family == 6 else "fallback"
    setting = rv.settings.get(key) or b.raw.settings.get(key)
    if setting is None:
        return None
    raw = setting.value
    assert isinstance(raw, v.RawFallback)
    address = _address(b, raw.target, rv.family, setting.loc)
    # a fallback without a port takes the virtual's port (0 for firewall marks)
    port = vport if raw.target.port is None else _port(b, raw.target.port, proto, setting.loc)
    if address is None or port is None:
        return None
    return Fallback(address, port, raw.forward, loc=setting.loc)


def _reals(b: _Builder, rv: RawVirtual, proto: Proto, vport: int, fwmark: bool) -> tuple[Real, ...]:
    out: dict[tuple[IPAddress, int], Real] = {}
    for raw, d in rv.reals:
        again: dict[int, list[str]] = {}  # line of the first → endpoints this line repeats
        for real in _expand(b, rv, raw, d.value_loc, proto, vport):
            key = (real.address, real.port)
            if key in out:
                again.setdefault(_line(out[key]), []).append(real.endpoint)
                continue
            if (
                not fwmark
                and raw.target.port is not None
                and real.port != vport
                and real.forward is not Forward.MASQ
            ):
                b.error(
                    d.loc,
                    f"real server port {real.port} differs from the virtual port {vport}; with "
                    f"{real.forward} the packets keep port {vport}",
                    "warning",
                )
            out[key] = real
        for line, endpoints in again.items():
            b.diagnostics.append(
                Diagnostic(d.loc, duplicate(endpoints, line), "warning", ldirectord=True)
            )
    return tuple(out.values())


def _line(real: Real) -> int:
    return real.loc.line if real.loc is not None else 0


def _expand(
    b: _Builder, rv: RawVirtual, raw: v.RawReal, loc: Location, proto: Proto, vport: int
) -> list[Real]:
    first = _address(b, raw.target, rv.family, loc)
    last = _address(b, raw.last, rv.family, loc) if raw.last is not None else first
    # a real without a port uses the virtual's port (ipvsadm does the same); fwmark: 0
    port = vport if raw.target.port is None else _port(b, raw.target.port, proto, loc)
    if first is None or last is None or port is None:
        return []
    addresses = _range(b, first, last, raw, loc)
    return [
        Real(
            a,
            port,
            raw.forward,
            raw.weight,
            raw.request,
            raw.receive,
            raw.lower,
            raw.upper,
            loc=loc,
        )
        for a in addresses
    ]


def _range(
    b: _Builder, first: IPAddress, last: IPAddress, raw: v.RawReal, loc: Location
) -> list[IPAddress]:
    if raw.last is None:
        return [first]
    assert isinstance(first, IPv4Address)
    assert isinstance(last, IPv4Address)
    span = Location(loc.path, loc.line, loc.col, len(raw.last.host.text) + raw.last.host.offset)
    if int(first) > int(last):
        b.error(span, f"invalid range {first}->{last}: the first address is above the last")
        return []
    if int(last) - int(first) >= MAX_RANGE:
        b.error(span, f"range {first}->{last} is too large (at most {MAX_RANGE} addresses)")
        return []
    return [IPv4Address(i) for i in range(int(first), int(last) + 1)]
