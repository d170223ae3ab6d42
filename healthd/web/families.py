"""The per-virtual and per-real metric families, written straight into the text format.

At 5,000 reals these are about 90,000 lines; prometheus_client's generic renderer takes
about a second of CPU for them, so they are written here. Everything a line needs that only
changes with the configuration (label strings, each real's dest key, its health slot, its
histogram's line templates) is made once per configuration in `index`; a scrape then costs
a few dict lookups of small int tuples and one `%` format per real and family.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
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
    hist: str  # `%` template of the histogram's lines (cumulative buckets, sum, count)
    moves: str  # `%` template of the two transition counters (up, down)
    up: tuple[str, str]  # healthd_real_up's line for 0 and for 1
    single: tuple[str, str, str]  # `%` templates: failures, kernel weight, active connections
    memo: list[tuple[int, str] | None]  # the last value and line of each of `single`


@dataclass(slots=True)
class Group:
    """A virtual and its rows."""

    virtual: Virtual
    service: ServiceKey
    labels: str
    always: bool  # checktype=on: every real up whatever its slot says
    rows: list[Row]


def _row(virtual: Virtual, real: Real, slots: Mapping[Any, Slot], stats: Stats) -> Row:
    from healthd.health import check_key

    lab = f'virtual="{escape(virtual.name)}",real="{escape(real.endpoint)}"'
    t = lab.replace("%", "%%")
    hist = "".join(f"{HIST}_bucket{{{t},{le}}} %d\n" for le in _LE)
    hist += f"{HIST}_sum{{{t}}} %r\n{HIST}_count{{{t}}} %d\n"
    moves = f'healthd_real_transitions_total{{{t},to="up"}} %d\n'
    moves += f'healthd_real_transitions_total{{{t},to="down"}} %d\n'
    key = real_dest(virtual, real).key
    ups = (f"healthd_real_up{{{lab}}} 0\n", f"healthd_real_up{{{lab}}} 1\n")
    names = ("consecutive_failures", "weight", "active_connections")
    single = tuple(f"healthd_real_{n}{{{t}}} %d\n" for n in names)
    return Row(virtual, real, lab, (int(key.address), key.port),
               slots.get(check_key(virtual, real)), stats.pair(virtual, real), hist, moves,
               ups, single, [None, None, None])  # type: ignore[arg-type]  # fmt: skip


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


def render(groups: list[Group], src: Sources) -> Iterator[str]:
    """Yield the exposition text of every family here, family by family."""
    out: dict[str, list[str]] = {name: [] for name in FAMILIES}
    for group in groups:
        carrying = _reals(group, src, out)
        _virtual(group, carrying, src, out)
    for name, (kind, text) in FAMILIES.items():
        yield f"# HELP {name} {text}\n# TYPE {name} {kind}\n"
        yield "".join(out[name])


def _reals(group: Group, src: Sources, out: dict[str, list[str]]) -> int:
    """Write one virtual's per-real lines; return how many of its reals carry traffic."""
    weights, active = _dests(src.kernel.get(group.service)), _active(src.dump.get(group.service))
    up, weight, fails, conns, admin = (out[f"healthd_real_{n}"] for n in REAL_GAUGES)
    results, moves = out["healthd_check_results_total"], out["healthd_real_transitions_total"]
    hist = out[HIST]
    carrying, forced = 0, src.forced
    overrides = src.overrides if len(src.overrides) else None
    for row in group.rows:
        slot = row.slot
        health = slot.health if slot is not None else None
        held = bool(forced) and slot is not None and slot.key in forced  # maintenancedir
        on = not held and (group.always or (health is not None and health.is_up))
        up.append(row.up[on])
        fails.append(_memo(row, 0, health.failures if health else 0))
        w = weights.get(row.dest)
        if w is not None:
            weight.append(_memo(row, 1, w))
        a = active.get(row.dest)
        if a is not None:
            conns.append(_memo(row, 2, a))
        override = overrides.get(row.virtual.name, row.real.endpoint) if overrides else None
        if override is not None and override.mode is not None:
            admin.append(f'healthd_real_admin_state{{{row.labels},state="{override.mode}"}} 1\n')
        elif on:
            carrying += 1
        _stat_lines(row, results, moves, hist)
    return carrying


def _memo(row: Row, i: int, value: int) -> str:
    """Return row's line of single-value family i for value, made again only when it moves."""
    last = row.memo[i]
    if last is None or last[0] != value:
        last = row.memo[i] = (value, row.single[i] % value)
    return last[1]


def _stat_lines(row: Row, results: list[str], moves: list[str], hist: list[str]) -> None:
    st, lab = row.stats, row.labels
    for reason, n in st.reasons.items():
        results.append(f'healthd_check_results_total{{{lab},reason="{_reason(reason)}"}} {n}\n')
    moves.append(row.moves % (st.ups, st.downs))
    hist.append(row.hist % (*accumulate(st.buckets), st.seconds, st.count))


def _virtual(group: Group, carrying: int, src: Sources, out: dict[str, list[str]]) -> None:
    lab, virtual = group.labels, group.virtual
    out["healthd_virtual_reals"].append(f"healthd_virtual_reals{{{lab}}} {len(virtual.reals)}\n")
    out["healthd_virtual_reals_up"].append(f"healthd_virtual_reals_up{{{lab}}} {carrying}\n")
    active = int(src.fallback.get(virtual.name, False))
    out["healthd_virtual_fallback_active"].append(
        f"healthd_virtual_fallback_active{{{lab}}} {active}\n"
    )
    entry = src.dump.get(group.service)
    if entry is None or entry.counters is None:
        return
    c = entry.counters
    out["healthd_ipvs_connections_total"].append(
        f"healthd_ipvs_connections_total{{{lab}}} {c.conns}\n"
    )
    for direction, p, b in (("in", c.inpkts, c.inbytes), ("out", c.outpkts, c.outbytes)):
        out["healthd_ipvs_packets_total"].append(
            f'healthd_ipvs_packets_total{{{lab},direction="{direction}"}} {p}\n'
        )
        out["healthd_ipvs_bytes_total"].append(
            f'healthd_ipvs_bytes_total{{{lab},direction="{direction}"}} {b}\n'
        )
    act = sum(d.active_conns for d in entry.dest_counters.values())
    inact = sum(d.inactive_conns for d in entry.dest_counters.values())
    states = out["healthd_ipvs_connection_states"]
    states.append(f'healthd_ipvs_connection_states{{{lab},state="active"}} {act}\n')
    states.append(f'healthd_ipvs_connection_states{{{lab},state="inactive"}} {inact}\n')
