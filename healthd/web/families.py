"""The per-virtual and per-real metric families, written straight into the text format.

At 5,000 reals these are about 90,000 lines; prometheus_client's generic renderer takes
about a second of CPU for them, so they are written here. Everything a line needs that only
changes with the configuration (label strings, each real's dest key, its health slot, its
histogram's line templates) is made once per configuration in `index`; a scrape then costs
a few dict lookups of small int tuples and one `%` format per real and family.

Lines are bytes, appended to one bytearray per family as they are made: a scrape holds
about 8 MB of text, and keeping 90,000 separate line objects until a final join (then
copying it twice more to encode it and prepend the daemon's families) made each scrape
fault in tens of megabytes of fresh pages.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final

from healthd.model import CheckType, Config, Real, Virtual
from healthd.reconcile import real_dest, service_key
from healthd.web.stats import BOUNDS, RealStats, Stats

if TYPE_CHECKING:
    from healthd.book import Slot
    from healthd.ipvs.types import ServiceEntry, ServiceKey
    from healthd.overrides import Overrides

_LE: Final = (*(f'le="{b:g}"' for b in BOUNDS), 'le="+Inf"')
Line = bytes | bytearray
HIST: Final = "healthd_check_duration_seconds"
REAL_GAUGES: Final = ("up", "weight", "consecutive_failures", "active_connections", "admin_state")

# name: (type, help), in the order they are written
FAMILIES: Final[dict[str, tuple[str, str]]] = {
    "healthd_virtual_reals": ("gauge", "Reals configured in the virtual"),
    "healthd_virtual_reals_up": ("gauge", "Reals of the virtual carrying traffic (no override)"),
    "healthd_virtual_fallback_active": ("gauge", "1 while no real is up (the fallback stands in)"),
    "healthd_ipvs_connections_total": ("counter", "Connections scheduled (last IPVS dump)"),
    "healthd_ipvs_packets_total": ("counter", "Packets through the virtual (last IPVS dump)"),
    "healthd_ipvs_bytes_total": ("counter", "Bytes through the virtual (last IPVS dump)"),
    "healthd_ipvs_connection_states": ("gauge", "The virtual's connections by state (dump)"),
    "healthd_real_up": ("gauge", "1 when the real's checks say up and no maintenance holds it"),
    "healthd_real_weight": ("gauge", "The real's weight in the kernel's table, if it is in it"),
    "healthd_real_consecutive_failures": ("gauge", "Consecutive failed checks of the real"),
    "healthd_real_active_connections": ("gauge", "Active connections to the real (IPVS dump)"),
    "healthd_real_admin_state": ("gauge", "1 for a real under an override: drain, drained, maint"),
    "healthd_check_results_total": ("counter", "Check results of the real by reason token"),
    "healthd_real_transitions_total": ("counter", "Health transitions of the real, by new state"),
    HIST: ("histogram", "How long the real's checks took"),
}


def escape(value: str) -> str:
    """Return a label value escaped for the text format."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@functools.lru_cache(maxsize=256)
def _reason(token: str) -> str:
    return escape(token)  # a handful of tokens ("ok", "timeout", ...) recur on every scrape


@dataclass(slots=True)
class Row:
    """One (virtual, real) pair as a scrape needs it, made once per configuration."""

    virtual: Virtual
    real: Real
    labels: str  # virtual="…",real="…"
    dest: tuple[int, int]  # the kernel dest's (address as int, port): cheap to hash
    slot: Slot | None
    stats: RealStats
    hist: bytes  # `%` template of the histogram's lines (cumulative buckets, sum, count)
    moves: bytes  # `%` template of the two transition counters (up, down)
    up: tuple[bytes, bytes]  # healthd_real_up's line for 0 and for 1
    single: tuple[bytes, bytes, bytes]  # `%` templates: failures, kernel weight, active conns
    memo: list[tuple[int, bytes] | None]  # the last value and line of each of `single`
    reasons: dict[str, bytes]  # `%` template of healthd_check_results_total by reason token


@dataclass(slots=True)
class Group:
    """A virtual and its rows."""

    virtual: Virtual
    service: ServiceKey
    labels: str
    always: bool  # checktype=on: every real up whatever its slot says
    rows: list[Row]
    hist: bytes = b""  # the rows' histogram templates end to end: one `%` per virtual
    moves: bytes = b""  # the same for the transition counters


def _row(virtual: Virtual, real: Real, slots: Mapping[Any, Slot], stats: Stats) -> Row:
    from healthd.health import check_key

    lab = f'virtual="{escape(virtual.name)}",real="{escape(real.endpoint)}"'
    t = lab.replace("%", "%%")
    hist = "".join(f"{HIST}_bucket{{{t},{le}}} %d\n" for le in _LE)
    hist += f"{HIST}_sum{{{t}}} %r\n{HIST}_count{{{t}}} %d\n"
    moves = f'healthd_real_transitions_total{{{t},to="up"}} %d\n'
    moves += f'healthd_real_transitions_total{{{t},to="down"}} %d\n'
    key = real_dest(virtual, real).key
    ups = (f"healthd_real_up{{{lab}}} 0\n".encode(), f"healthd_real_up{{{lab}}} 1\n".encode())
    names = ("consecutive_failures", "weight", "active_connections")
    single = tuple(f"healthd_real_{n}{{{t}}} %d\n".encode() for n in names)
    return Row(virtual, real, lab, (int(key.address), key.port),
               slots.get(check_key(virtual, real)), stats.pair(virtual, real), hist.encode(),
               moves.encode(), ups, single, [None, None, None], {})  # type: ignore[arg-type]  # fmt: skip


def index(config: Config, slots: Mapping[Any, Slot], stats: Stats) -> list[Group]:
    """Return every virtual's group of rows (call again when the config or slots change)."""
    groups = [
        Group(
            v,
            service_key(v),
            f'virtual="{escape(v.name)}"',
            v.check.checktype is CheckType.ON,
            [_row(v, r, slots, stats) for r in v.reals],
        )
        for v in config.virtuals
    ]
    for g in groups:
        g.hist = b"".join(r.hist for r in g.rows)
        g.moves = b"".join(r.moves for r in g.rows)
    stats.forget({(r.virtual.name, r.real.endpoint) for g in groups for r in g.rows})
    return groups


def _dests(entry: ServiceEntry | None) -> dict[tuple[int, int], int]:
    if entry is None:
        return {}
    return {(int(k.address), k.port): d.weight for k, d in entry.dests.items()}


def _active(entry: ServiceEntry | None) -> dict[tuple[int, int], int]:
    if entry is None:
        return {}
    return {(int(k.address), k.port): c.active_conns for k, c in entry.dest_counters.items()}


@dataclass(frozen=True, slots=True)
class Sources:
    """What a scrape reads: the engine's forced set, kernel record, overrides, fallbacks."""

    forced: frozenset[Any]
    kernel: Mapping[ServiceKey, ServiceEntry]
    dump: Mapping[ServiceKey, ServiceEntry]
    overrides: Overrides
    fallback: Mapping[str, bool]


def render(groups: list[Group], src: Sources) -> list[Line]:
    """Return the exposition text of every family here, as chunks to join in order."""
    out = {name: bytearray() for name in FAMILIES}
    for group in groups:
        carrying = _reals(group, src, out)
        _virtual(group, carrying, src, out)
    chunks: list[Line] = []
    for name, (kind, text) in FAMILIES.items():
        chunks.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n".encode())
        chunks.append(out[name])
    return chunks


def _reals(group: Group, src: Sources, out: dict[str, bytearray]) -> int:
    """Write one virtual's per-real lines; return how many of its reals carry traffic.

    The hot loop of a scrape (it runs once per real): everything it can is looked up once
    per virtual, and each line is a template made once per configuration (`_row`).
    """
    weights, active = _dests(src.kernel.get(group.service)), _active(src.dump.get(group.service))
    up, weight, fails, conns, admin = (out[f"healthd_real_{n}"] for n in REAL_GAUGES)
    results, moves = out["healthd_check_results_total"], out["healthd_real_transitions_total"]
    hist = out[HIST]
    carrying, forced, always = 0, src.forced, group.always
    overrides = src.overrides if len(src.overrides) else None
    hv: list[float] = []  # the histogram's values, row after row
    mv: list[int] = []  # the transition counters' values
    for row in group.rows:
        slot = row.slot
        health = slot.health if slot is not None else None
        held = bool(forced) and slot is not None and slot.key in forced  # maintenancedir
        on = not held and (always or (health is not None and health.is_up))
        up += row.up[on]
        fails += _memo(row, 0, health.failures if health else 0)
        w = weights.get(row.dest)
        if w is not None:
            weight += _memo(row, 1, w)
        a = active.get(row.dest)
        if a is not None:
            conns += _memo(row, 2, a)
        override = overrides.get(row.virtual.name, row.real.endpoint) if overrides else None
        if override is not None and override.mode is not None:
            line = f'healthd_real_admin_state{{{row.labels},state="{override.mode}"}} 1\n'
            admin += line.encode()
        elif on:
            carrying += 1
        st = row.stats
        for reason, n in st.reasons.items():
            results += (row.reasons.get(reason) or _result_template(row, reason)) % n
        mv += (st.ups, st.downs)
        hv += accumulate(st.buckets)
        hv += (st.seconds, st.count)
    moves += group.moves % tuple(mv)
    hist += group.hist % tuple(hv)
    return carrying


def _memo(row: Row, i: int, value: int) -> bytes:
    """Return row's line of single-value family i for value, made again only when it moves."""
    last = row.memo[i]
    if last is None or last[0] != value:
        last = row.memo[i] = (value, row.single[i] % value)
    return last[1]


def _result_template(row: Row, reason: str) -> bytes:
    """Make (once per row and reason token) row's healthd_check_results_total template."""
    lab = row.labels.replace("%", "%%")
    line = f'healthd_check_results_total{{{lab},reason="{_reason(reason)}"}} %d\n'
    template = row.reasons[reason] = line.encode()
    return template


def _virtual(group: Group, carrying: int, src: Sources, out: dict[str, bytearray]) -> None:
    lab, virtual = group.labels, group.virtual

    def put(name: str, value: int, extra: str = "") -> None:
        out[name] += f"{name}{{{lab}{extra}}} {value}\n".encode()

    put("healthd_virtual_reals", len(virtual.reals))
    put("healthd_virtual_reals_up", carrying)
    put("healthd_virtual_fallback_active", int(src.fallback.get(virtual.name, False)))
    entry = src.dump.get(group.service)
    if entry is None or entry.counters is None:
        return
    c = entry.counters
    put("healthd_ipvs_connections_total", c.conns)
    for direction, p, b in (("in", c.inpkts, c.inbytes), ("out", c.outpkts, c.outbytes)):
        put("healthd_ipvs_packets_total", p, f',direction="{direction}"')
        put("healthd_ipvs_bytes_total", b, f',direction="{direction}"')
    dests = entry.dest_counters.values()
    put("healthd_ipvs_connection_states", sum(d.active_conns for d in dests), ',state="active"')
    put("healthd_ipvs_connection_states", sum(d.inactive_conns for d in dests), ',state="inactive"')
