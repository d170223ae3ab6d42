"""The model as plain data (dump_model) and as ldirectord.cf text (render_config).

render_config writes every effective value out explicitly, so parsing its output gives
back an equal Config. Pure; no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import fields, is_dataclass
from ipaddress import IPv4Address, IPv6Address

from checks.base import host_text
from healthd.config.build import guessed_service
from healthd.config.cluster import ROLES
from healthd.model import (
    AlertStatus,
    Announce,
    CheckSpec,
    CheckType,
    Config,
    Fallback,
    Proto,
    Real,
    Syncd,
    SyncRole,
    Virtual,
)

# the cluster settings (config/cluster.py) show only when set: most files have none
_WHEN_SET = frozenset({"announce", "syncd"})
PlainValue = str | int | float | bool | None | list["PlainValue"] | dict[str, "PlainValue"]


def _plain(value: object) -> PlainValue:
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, PlainValue] = {}
        if isinstance(value, Virtual):
            out["name"] = value.name
        for f in fields(value):
            if f.name != "loc" and not (f.name in _WHEN_SET and getattr(value, f.name) is None):
                out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, frozenset):
        return [s.value for s in (*AlertStatus, *SyncRole) if s in value]
    if isinstance(value, tuple | list):
        return [_plain(x) for x in value]
    assert value is None or isinstance(value, str | int | float | bool), value
    return value


def dump_model(config: Config) -> dict[str, PlainValue]:
    """Return the whole model as plain dicts, lists and scalars (for YAML or JSON)."""
    plain = _plain(config)
    assert isinstance(plain, dict)
    return plain


# --- render_config ---------------------------------------------------------------------


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _raw(key: str, value: str) -> str:
    """Return `key="value"`, or the value as written when it holds a quote (raw directives)."""
    return f"{key}={value}" if '"' in value else f'{key}="{value}"'


def render_config(config: Config) -> str:
    """Return ldirectord.cf text that parses back to a Config equal to `config`."""
    lines = [
        f"checkinterval={_num(config.checkinterval)}",
        f"autoreload={_yes(config.autoreload)}",
        f'logfile="{config.logfile}"',
        f"fork={_yes(config.fork)}",
        f"supervised={_yes(config.supervised)}",
        f"readdquiescent={_yes(config.readdquiescent)}",
        f"resync_interval={_num(config.resync_interval)}",
        f"max_in_flight={config.max_in_flight}",
    ]
    if config.http_listen is not None:
        address, port = config.http_listen
        lines.append(f"http_listen={host_text(address)}:{port}")
    lines += [_raw("execute", e) for e in config.execute]
    lines += _syncd(config.syncd)
    for key in ("callback", "emailalertfrom", "maintenancedir", "state_file", "command_user"):
        value = getattr(config, key)
        if value is not None:
            lines.append(_raw(key, value))
    for virtual in config.virtuals:
        lines.append("")
        lines += _virtual(virtual)
    return "\n".join(lines) + "\n"


def _head(v: Virtual) -> str:
    key = "virtual6" if v.family == 6 else "virtual"
    if v.proto is Proto.FWM:
        return f"{key}={v.fwmark}"
    assert v.address is not None
    return f"{key}={host_text(v.address)}:{v.port}"


def _virtual(v: Virtual) -> list[str]:
    body = [f"protocol={v.proto}", f"scheduler={v.scheduler}"]
    if v.persistent is not None:
        body.append(f"persistent={v.persistent}")
    if v.netmask is not None:
        body.append(f"netmask={v.netmask}")
    if v.ops:
        body.append("ops=yes")
    if v.schedflags:
        body.append(f"schedflags={','.join(v.schedflags)}")
    body += _check(v, v.check)
    body += [
        f"checkinterval={_num(v.checkinterval)}",
        f"failurecount={v.failurecount}",
        f"rise={v.rise}",
        f"quiescent={_yes(v.quiescent)}",
        f"cleanstop={_yes(v.cleanstop)}",
    ]
    body += _alerts(v)
    for key in ("fallbackcommand", "monitorfile", "servicename", "comment"):
        value = getattr(v, key)
        if value is not None:
            body.append(_raw(key, value))
    if v.fallback is not None:
        body.append(_fallback(v, v.fallback))
    body += _announce(v.announce)
    body += [_real(v, r) for r in v.reals]
    return [_head(v), *("    " + line for line in body)]


def _check(v: Virtual, c: CheckSpec) -> list[str]:
    checktype = str(c.combined_every) if c.checktype is CheckType.COMBINED else c.checktype.value
    out = [f"checktype={checktype}"]
    guessed = guessed_service(v.port) if v.proto is not Proto.FWM else None
    if c.service != guessed:
        out.append(f"service={c.service}")
    if c.checkport is not None:
        out.append(f"checkport={c.checkport}")
    out += [f'request="{c.request}"', f"httpmethod={c.httpmethod}"]
    for key in ("receive", "login", "passwd", "database", "secret", "virtualhost"):
        value = getattr(c, key)
        if value:
            out.append(f'{key}="{value}"')
    out += [
        f'checkcommand="{c.checkcommand}"',
        f"checktimeout={_num(c.checktimeout)}",
        f"negotiatetimeout={_num(c.negotiatetimeout)}",
        f"tls_verify={_yes(c.tls_verify)}",
    ]
    if c.checkcount != 1:
        out.append(f"checkcount={c.checkcount}")
    if c.tls_cafile is not None:
        out.append(f'tls_cafile="{c.tls_cafile}"')
    if c.tls_hostname is not None:
        out.append(f'tls_hostname="{c.tls_hostname}"')  # quoted: a global value may hold '#'
    return out


def _alerts(v: Virtual) -> list[str]:
    a = v.alerts
    states = [s.value for s in AlertStatus if s in a.emailalertstatus] or ["none"]
    out = [f"emailalertfreq={a.emailalertfreq}", f"emailalertstatus={','.join(states)}"]
    if a.emailalert:
        out.append(_raw("emailalert", ",".join(a.emailalert)))
    if a.smtp is not None:
        out.append(f"smtp={a.smtp}")
    return out


def _fallback(v: Virtual, f: Fallback) -> str:
    key = "fallback6" if v.family == 6 else "fallback"
    return f"{key}={host_text(f.address)}:{f.port} {f.forward}"


def _real(v: Virtual, r: Real) -> str:
    key = "real6" if v.family == 6 else "real"
    host = host_text(r.address)
    where = host if r.port == 0 and v.proto is Proto.FWM else f"{host}:{r.port}"
    text = f"{key}={where} {r.forward} {r.weight}"
    if r.request is not None:
        text += f' "{r.request}", "{r.receive or ""}"'
    if r.lower:
        text += f" l:{r.lower}"
    if r.upper:
        text += f" u:{r.upper}"
    return text


def _announce(a: Announce | None) -> list[str]:
    if a is None:
        return []
    where = (
        f"announce_table={a.table}" if a.table is not None else f"announce_interface={a.interface}"
    )
    return [where, f"announce_fallback={_yes(a.fallback)}"]


def _syncd(s: Syncd | None) -> list[str]:
    if s is None:
        return []
    mode = next(name for name, roles in ROLES.items() if roles == s.roles)
    lines = [f"syncd={mode}", f"syncd_id={s.syncid}"]
    return [*lines, f"syncd_interface={s.interface}"] if s.interface else lines
