"""Parser for ldirectord.cf: Directive stream → RawConfig (global settings, virtual blocks).

Knows every directive: its scope, its value syntax (healthd.config.values) and the
deprecated ones. Reports syntax problems only; names stay unresolved and defaults unset
(build.py does both). No I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from healthd.config import addresses as a
from healthd.config import cluster, reals
from healthd.config import values as v
from healthd.config.lexer import Blank, Directive, Lexed, unquoted_hash
from healthd.errors import Diagnostic
from healthd.location import Location

G, V, GV = "global", "virtual", "both"

Parse = Callable[[str, str, int], object]  # (key, value text, family) -> value


def _simple(fn: Callable[[str, str], object]) -> Parse:
    return lambda key, text, family: fn(key, text)


@dataclass(frozen=True, slots=True)
class Spec:
    """How one directive is written: where it may appear and how its value reads."""

    scope: str
    parse: Parse
    multi: bool = False  # may appear several times (real, execute)
    raw: bool = False  # ldirectord takes the raw rest of the line: a lone `"` is kept
    family: int | None = None  # real6/fallback6 need a virtual6 block, real/fallback a virtual


_STR = _simple(v.string)
_RAW = _simple(v.raw)
_SECONDS = _simple(v.seconds)
_COUNT = _simple(v.count)
_YESNO = _simple(v.yes_no)


def _real(key: str, text: str, family: int) -> object:
    return reals.parse_real(text, family)


def _fallback(key: str, text: str, family: int) -> object:
    return a.fallback(text, 6 if key.endswith("6") else 4)


SPECS: Final[dict[str, Spec]] = {
    # global only
    "autoreload": Spec(G, _YESNO),
    "callback": Spec(G, _STR),
    "logfile": Spec(G, _STR),
    "execute": Spec(G, _RAW, multi=True, raw=True),
    "fork": Spec(G, _YESNO),
    "supervised": Spec(G, _YESNO),
    "readdquiescent": Spec(G, _YESNO),
    "emailalertfrom": Spec(G, _RAW, raw=True),
    "maintenancedir": Spec(G, _RAW, raw=True),
    "resync_interval": Spec(G, _SECONDS),  # healthd extension
    "max_in_flight": Spec(G, _COUNT),  # healthd extension
    "http_listen": Spec(G, _simple(v.listen)),  # healthd extension
    "state_file": Spec(G, _STR),  # healthd extension
    "syncd": Spec(G, _simple(cluster.roles)),  # healthd extension (config/cluster.py)
    "syncd_interface": Spec(G, _simple(cluster.interface)),  # healthd extension
    "syncd_id": Spec(G, _simple(cluster.syncid)),  # healthd extension
    "command_user": Spec(G, _simple(v.token)),  # healthd extension
    # global and virtual
    "checktimeout": Spec(GV, _SECONDS),
    "negotiatetimeout": Spec(GV, _SECONDS),
    "checkinterval": Spec(GV, _SECONDS),
    "checkcount": Spec(GV, _COUNT),
    "failurecount": Spec(GV, _COUNT),
    "fallback": Spec(GV, _fallback, family=4),
    "fallback6": Spec(GV, _fallback, family=6),
    "fallbackcommand": Spec(GV, _RAW, raw=True),
    "quiescent": Spec(GV, _YESNO),
    "cleanstop": Spec(GV, _YESNO),
    "emailalert": Spec(GV, _simple(v.emails), raw=True),
    "emailalertfreq": Spec(GV, _simple(v.whole)),
    "emailalertstatus": Spec(GV, _simple(v.alertstatus)),
    "smtp": Spec(GV, _simple(v.smtp)),
    "rise": Spec(GV, _COUNT),  # healthd extension
    "tls_verify": Spec(GV, _YESNO),  # healthd extension
    "tls_cafile": Spec(GV, _STR),  # healthd extension
    "tls_hostname": Spec(GV, _simple(v.token)),  # healthd extension
    # virtual only
    "real": Spec(V, _real, multi=True, family=4),
    "real6": Spec(V, _real, multi=True, family=6),
    "checktype": Spec(V, _simple(v.checktype)),
    "service": Spec(V, _simple(v.service)),
    "checkport": Spec(V, _simple(v.checkport)),
    "request": Spec(V, _simple(v.request)),
    "receive": Spec(V, _STR),
    "httpmethod": Spec(V, _simple(v.httpmethod)),
    "virtualhost": Spec(V, _simple(v.token)),
    "login": Spec(V, _STR),
    "passwd": Spec(V, _STR),
    "database": Spec(V, _STR),
    "secret": Spec(V, _STR),
    "checkcommand": Spec(V, _STR),
    "scheduler": Spec(V, _simple(v.scheduler)),
    "persistent": Spec(V, _simple(v.whole)),
    "netmask": Spec(V, lambda key, text, family: v.netmask(text, family)),
    "protocol": Spec(V, _simple(v.protocol)),
    "ops": Spec(V, _YESNO),
    "schedflags": Spec(V, _simple(v.schedflags)),
    "monitorfile": Spec(V, _STR),
    "servicename": Spec(V, _RAW, raw=True),
    "comment": Spec(V, _RAW, raw=True),
    "load": Spec(V, _STR),  # ldirectord: parsed, never used
    "announce_table": Spec(V, _simple(cluster.table)),  # healthd extension (config/cluster.py)
    "announce_interface": Spec(V, _simple(cluster.interface)),  # healthd extension
    "announce_fallback": Spec(V, _YESNO),  # healthd extension
}

# ldirectord rejects these with these words (l.1444, 1680, 1789)
REMOVED: Final[dict[str, str]] = {
    "connecttimeout": "connecttimeout directive deprecated in favour of negotiatetimeout",
    "timeout": "timeout directive deprecated in favour of checktimeout and negotiatetimeout",
}
CHECKCOUNT_WARNING: Final = (
    "checkcount is deprecated and slated for removal; please see 'failurecount' "
    "(it still sets the number of ping attempts)"
)
BARE_SUPERVISED_WARNING: Final = (
    "please update your config not to use a bare supervised directive (write supervised=yes)"
)
MAX_RANGE: Final = reals.MAX_RANGE  # addresses one `real=a->b` may expand to


@dataclass(frozen=True, slots=True)
class Setting:
    """A parsed value and the location of its directive."""

    value: object
    loc: Location  # the value's span
    key_loc: Location


@dataclass(slots=True)
class RawVirtual:
    """One virtual block: its head, its settings and its real lines."""

    family: int
    head: v.VirtualHead | None  # None when the head did not parse
    loc: Location  # the value of the virtual= line
    settings: dict[str, Setting] = field(default_factory=dict)
    reals: list[tuple[v.RawReal, Directive]] = field(default_factory=list)


@dataclass(slots=True)
class RawConfig:
    """The file as written: global settings, virtual blocks and what went wrong."""

    path: str
    settings: dict[str, Setting] = field(default_factory=dict)
    execute: list[str] = field(default_factory=list)
    virtuals: list[RawVirtual] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def parse(lexed: Lexed) -> RawConfig:
    """Group directives into the global section and virtual blocks, parsing each value."""
    raw = RawConfig(path=lexed.path, diagnostics=list(lexed.diagnostics))
    current: RawVirtual | None = None
    ended: tuple[int, int] | None = None  # (blank line, block line) of the last closed block
    for item in lexed.items:
        if isinstance(item, Blank):
            if current is not None:
                ended = (item.line, current.loc.line)
            current = None
        elif item.indented:
            if current is None:
                _outside_block(raw, item, ended)
            else:
                _directive(raw, item, current)
        elif item.key in ("virtual", "virtual6"):
            current = _open_virtual(raw, item)
            ended = None
        else:
            current, ended = None, None
            _directive(raw, item, None)
    return raw


def _error(raw: RawConfig, loc: Location, message: str, severity: str = "error") -> None:
    raw.diagnostics.append(Diagnostic(loc, message, severity))


def _outside_block(raw: RawConfig, d: Directive, ended: tuple[int, int] | None) -> None:
    message = f"indented '{d.key}' outside a virtual block"
    if ended is not None:
        message += f" (the blank line {ended[0]} ended the virtual block of line {ended[1]})"
    _error(raw, d.loc, message)


def _open_virtual(raw: RawConfig, d: Directive) -> RawVirtual:
    family = 6 if d.key == "virtual6" else 4
    block = RawVirtual(family, None, d.value_loc)
    raw.virtuals.append(block)
    if d.value is None or not d.value:
        _error(raw, d.loc, f"'{d.key}' needs an address:port or a firewall mark")
        return block
    try:
        block.head = a.virtual_head(d.value, family)
    except v.Bad as bad:
        _error(raw, d.span(bad.offset, bad.length), bad.message)
    return block


def _directive(raw: RawConfig, d: Directive, block: RawVirtual | None) -> None:
    if d.key in ("virtual", "virtual6"):
        _error(raw, d.loc, f"'{d.key}' must start at the beginning of the line (no indentation)")
        return
    if d.key in REMOVED:
        _error(raw, d.loc, REMOVED[d.key])
        return
    if block is not None and _glued_hash(raw, d):
        return
    spec = SPECS.get(d.key)
    if spec is None:
        _unknown(raw, d)
        return
    if not _in_scope(raw, d, spec, block):
        return
    if d.open_quote is not None and not spec.raw:
        _error(raw, d.span(d.open_quote, 1), 'unterminated string (missing closing ")')
        return
    if d.value is None:
        if d.key == "supervised" and block is None:
            _error(raw, d.loc, BARE_SUPERVISED_WARNING, "warning")
            _store(raw, d, True, raw.settings)
        else:
            _error(raw, d.loc, f"'{d.key}' needs a value ({d.key}=...)")
        return
    try:
        value = spec.parse(d.key, d.value, block.family if block else 4)
    except v.Bad as bad:
        _error(raw, d.span(bad.offset, bad.length), bad.message)
        return
    if d.key == "checkcount":
        _error(raw, d.loc, CHECKCOUNT_WARNING, "warning")
    if block is None:
        _store_global(raw, d, value)
    elif d.key in ("real", "real6"):
        assert isinstance(value, v.RawReal)
        block.reals.append((value, d))
    else:
        _store(raw, d, value, block.settings)


def _glued_hash(raw: RawConfig, d: Directive) -> bool:
    """Report a `#` glued to an unquoted value in a virtual block; return whether found."""
    at = unquoted_hash(d.value or "")
    if at is None:
        return False
    # ldirectord: s/#.*// on every virtual-block line, so it silently reads a shorter value
    _error(
        raw,
        d.span(at, 1),
        f"'#' inside a value (ldirectord cuts the line here and reads {d.key}="
        f"{(d.value or '')[:at]}); quote the value to keep the '#', or put a blank before a "
        "comment",
    )
    return True


def _unknown(raw: RawConfig, d: Directive) -> None:
    import difflib  # here: only a file with a mistake needs it, not every start

    names = [*SPECS, "virtual", "virtual6"]
    close = difflib.get_close_matches(d.key, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    _error(raw, d.loc, f"unknown directive '{d.key}'{hint}")


def _in_scope(raw: RawConfig, d: Directive, spec: Spec, block: RawVirtual | None) -> bool:
    if block is None and spec.scope == V:
        _error(raw, d.loc, f"'{d.key}' is only allowed inside a virtual block")
        return False
    if block is not None and spec.scope == G:
        _error(raw, d.loc, f"'{d.key}' is only allowed in the global section")
        return False
    if block is not None and spec.family is not None and spec.family != block.family:
        other = d.key[:-1] if d.key.endswith("6") else d.key + "6"
        head = "virtual6" if block.family == 6 else "virtual"
        _error(raw, d.loc, f"cannot specify '{d.key}' in a {head} block; use '{other}' instead")
        return False
    return True


def _store_global(raw: RawConfig, d: Directive, value: object) -> None:
    if d.key == "execute":
        assert isinstance(value, str)
        raw.execute.append(value)
    else:
        _store(raw, d, value, raw.settings)


def _store(raw: RawConfig, d: Directive, value: object, into: dict[str, Setting]) -> None:
    previous = into.get(d.key)
    if previous is not None:
        _error(
            raw,
            d.loc,
            f"'{d.key}' is set again; this overrides the value of line {previous.key_loc.line}",
            "warning",
        )
    into[d.key] = Setting(value, d.value_loc, d.loc)
