"""Prometheus metrics, rendered from the engine's state at scrape time.

Two parts in one exposition: the daemon-wide families go through prometheus_client (a
custom collector on a registry of our own, with its process collector); the per-real and
per-virtual families, tens of thousands of samples at 5,000 reals, are written here
directly with label strings made once per configuration, because prometheus_client's
generic renderer takes about a second of CPU for them (bench/RESULTS.md). The format is
the same text format 0.0.4 (checked by `promtool check metrics` in the tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from healthd import __version__
from healthd.health import CheckKey, check_key
from healthd.model import CheckType, Config, Real, Virtual
from healthd.reconcile import real_dest, service_key
from healthd.web.stats import BOUNDS, RealStats, Stats

if TYPE_CHECKING:
    from healthd.engine import Engine
    from healthd.ipvs.counting import CountingDriver
    from healthd.ipvs.types import DestKey, ServiceKey

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LE = (*tuple(f'le="{b:g}"' for b in BOUNDS), 'le="+Inf"')


class DaemonFacts(Protocol):
    """What the metrics read of healthd.daemon.Daemon."""

    reloads: int
    reload_failures: int
    loaded_at: float


def escape(value: str) -> str:
    """Return a label value escaped for the text format."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass(frozen=True, slots=True)
class _Row:
    """What a scrape needs of one (virtual, real) pair, made once per configuration."""

    virtual: Virtual
    real: Real
    labels: str  # virtual="…",real="…"
    service: ServiceKey
    dest: DestKey
    key: CheckKey  # its health slot
    always: bool  # checktype=on: up whatever the slot says


class Metrics:
    """Renders /metrics for one daemon: its engine, the Stats listener, the counting driver."""

    def __init__(
        self, engine: Engine, stats: Stats, driver: CountingDriver, daemon: DaemonFacts
    ) -> None:
        from prometheus_client import CollectorRegistry, ProcessCollector

        self.engine, self.stats, self.driver, self.daemon = engine, stats, driver, daemon
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.registry.register(_DaemonCollector(self))
        self._config: Config | None = None
        self._rows: list[_Row] = []
        self._virtual_labels: dict[int, str] = {}

    def render(self) -> bytes:
        """Return the whole exposition (daemon families, then per-virtual and per-real)."""
        from prometheus_client import generate_latest

        head = generate_latest(self.registry)
        return head + "".join(self._families()).encode()

    def _index(self) -> list[_Row]:
        config = self.engine.config
        if config is not self._config:
            self._config = config
            self._rows = [
                _Row(
                    v,
                    r,
                    f'virtual="{escape(v.name)}",real="{escape(r.endpoint)}"',
                    service_key(v),
                    real_dest(v, r).key,
                    check_key(v, r),
                    v.check.checktype is CheckType.ON,
                )
                for v in config.virtuals
                for r in v.reals
            ]
            self._virtual_labels = {id(v): f'virtual="{escape(v.name)}"' for v in config.virtuals}
            self.stats.forget({(row.virtual.name, row.real.endpoint) for row in self._rows})
        return self._rows

    def _families(self) -> Iterator[str]:
        out: dict[str, list[str]] = {}
        carrying = _real_lines(self, self._index(), out)
        _virtual_lines(self, carrying, out)
        return _written(out)


# name: (type, help) of the families rendered here, in the order they are written
FAMILIES: dict[str, tuple[str, str]] = {
    "healthd_virtual_reals": ("gauge", "Reals configured in the virtual"),
    "healthd_virtual_reals_up": (
        "gauge",
        "Reals of the virtual carrying traffic (up, no override)",
    ),
    "healthd_virtual_fallback_active": (
        "gauge",
        "1 while no real is up and the fallback stands in",
    ),
    "healthd_ipvs_connections_total": (
        "counter",
        "Connections scheduled to the virtual (IPVS dump)",
    ),
    "healthd_ipvs_packets_total": ("counter", "Packets through the virtual (last IPVS dump)"),
    "healthd_ipvs_bytes_total": ("counter", "Bytes through the virtual (last IPVS dump)"),
    "healthd_ipvs_connection_states": ("gauge", "The virtual's connections by state (IPVS dump)"),
    "healthd_real_up": ("gauge", "1 when the real's checks say up and no maintenance holds it"),
    "healthd_real_weight": (
        "gauge",
        "The real's weight in the kernel's IPVS table, if it is in it",
    ),
    "healthd_real_consecutive_failures": ("gauge", "Consecutive failed checks of the real"),
    "healthd_real_active_connections": ("gauge", "Active connections to the real (IPVS dump)"),
    "healthd_real_admin_state": ("gauge", "1 for a real under an override: drain, drained, maint"),
    "healthd_check_results_total": ("counter", "Check results of the real by reason token"),
    "healthd_real_transitions_total": ("counter", "Health transitions of the real, by new state"),
    "healthd_check_duration_seconds": ("histogram", "How long the real's checks took"),
}


def _written(lines: dict[str, list[str]]) -> Iterator[str]:
    for name, (kind, text) in FAMILIES.items():
        yield f"# HELP {name} {text}\n# TYPE {name} {kind}\n"
        yield from lines.get(name, ())


def _states(engine: Engine) -> tuple[Any, frozenset[Any], dict[Any, Any]]:
    """Return the engine's health slots by check key, its forced set and its kernel record."""
    # the one place that reads the engine's own state: its slots and its kernel view
    return engine._slots.by_key, frozenset(engine._forced), engine._kernel.services


def _real_lines(m: Metrics, rows: list[_Row], out: dict[str, list[str]]) -> dict[int, int]:
    """Write the per-real families into `out`; return the up reals by id(virtual)."""
    slots, forced, kernel = _states(m.engine)
    dump = m.driver.last_dump.services if m.driver.last_dump is not None else {}
    up, weight, fails, active, admin = (out.setdefault(n, []) for n in (
        "healthd_real_up", "healthd_real_weight", "healthd_real_consecutive_failures",
        "healthd_real_active_connections", "healthd_real_admin_state"))  # fmt: skip
    carrying: dict[int, int] = {}
    by_pair, overrides = m.stats.by_pair, m.engine.overrides
    for row in rows:
        lab, slot = row.labels, slots.get(row.key)
        health = slot.health if slot is not None else None
        on = row.key not in forced and (row.always or (health is not None and health.is_up))
        up.append(f"healthd_real_up{{{lab}}} {int(on)}\n")
        fails.append(
            f"healthd_real_consecutive_failures{{{lab}}} {health.failures if health else 0}\n"
        )
        entry = kernel.get(row.service)
        dest = entry.dests.get(row.dest) if entry is not None else None
        if dest is not None:
            weight.append(f"healthd_real_weight{{{lab}}} {dest.weight}\n")
        dumped = dump.get(row.service)
        counters = dumped.dest_counters.get(row.dest) if dumped is not None else None
        if counters is not None:
            active.append(f"healthd_real_active_connections{{{lab}}} {counters.active_conns}\n")
        override = overrides.get(row.virtual.name, row.real.endpoint) if overrides else None
        if override is not None and override.mode is not None:
            admin.append(f'healthd_real_admin_state{{{lab},state="{override.mode}"}} 1\n')
        elif on:
            carrying[id(row.virtual)] = carrying.get(id(row.virtual), 0) + 1
        stats = by_pair.get((id(row.virtual), id(row.real)))
        if stats is not None:
            _real_stats(lab, stats, out)
    return carrying


def _real_stats(lab: str, stats: RealStats, out: dict[str, list[str]]) -> None:
    results = out.setdefault("healthd_check_results_total", [])
    for reason, n in stats.reasons.items():
        results.append(f'healthd_check_results_total{{{lab},reason="{escape(reason)}"}} {n}\n')
    moves = out.setdefault("healthd_real_transitions_total", [])
    moves.append(f'healthd_real_transitions_total{{{lab},to="up"}} {stats.ups}\n')
    moves.append(f'healthd_real_transitions_total{{{lab},to="down"}} {stats.downs}\n')
    hist = out.setdefault("healthd_check_duration_seconds", [])
    total = 0
    for le, n in zip(_LE, stats.buckets, strict=True):
        total += n
        hist.append(f"healthd_check_duration_seconds_bucket{{{lab},{le}}} {total}\n")
    hist.append(f"healthd_check_duration_seconds_sum{{{lab}}} {stats.seconds!r}\n")
    hist.append(f"healthd_check_duration_seconds_count{{{lab}}} {stats.count}\n")


def _virtual_lines(m: Metrics, carrying: dict[int, int], out: dict[str, list[str]]) -> None:
    engine = m.engine
    dump = m.driver.last_dump.services if m.driver.last_dump is not None else {}
    reals, up, fallback, conns, pkts, octets, states = (
        out.setdefault(n, []) for n in list(FAMILIES)[:7]
    )
    for virtual in engine.config.virtuals:
        lab = m._virtual_labels[id(virtual)]
        reals.append(f"healthd_virtual_reals{{{lab}}} {len(virtual.reals)}\n")
        up.append(f"healthd_virtual_reals_up{{{lab}}} {carrying.get(id(virtual), 0)}\n")
        active = int(engine.fallback_active.get(virtual.name, False))
        fallback.append(f"healthd_virtual_fallback_active{{{lab}}} {active}\n")
        entry = dump.get(service_key(virtual))
        if entry is None or entry.counters is None:
            continue
        c = entry.counters
        conns.append(f"healthd_ipvs_connections_total{{{lab}}} {c.conns}\n")
        for direction, p, b in (("in", c.inpkts, c.inbytes), ("out", c.outpkts, c.outbytes)):
            pkts.append(f'healthd_ipvs_packets_total{{{lab},direction="{direction}"}} {p}\n')
            octets.append(f'healthd_ipvs_bytes_total{{{lab},direction="{direction}"}} {b}\n')
        act = sum(d.active_conns for d in entry.dest_counters.values())
        inact = sum(d.inactive_conns for d in entry.dest_counters.values())
        states.append(f'healthd_ipvs_connection_states{{{lab},state="active"}} {act}\n')
        states.append(f'healthd_ipvs_connection_states{{{lab},state="inactive"}} {inact}\n')


class _DaemonCollector:
    """The daemon-wide families, for prometheus_client's registry."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Any]:
        yield from _daemon_families(self._m)


def _daemon_families(m: Metrics) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

    d, s, drv, engine = m.daemon, m.stats, m.driver, m.engine
    yield InfoMetricFamily("healthd_build", "healthd's version", value={"version": __version__})
    state = GaugeMetricFamily(
        "healthd_engine_state", "1 for the engine's current state", labels=["state"]
    )
    for name in ("starting", "running", "reloading", "stopping"):
        state.add_metric([name], int(engine.state == name))
    yield state
    reloads = CounterMetricFamily(
        "healthd_reloads", "Configuration reloads by result", labels=["result"]
    )
    reloads.add_metric(["ok"], d.reloads)
    reloads.add_metric(["failed"], d.reload_failures)
    yield reloads
    yield GaugeMetricFamily(
        "healthd_config_last_reload_success_timestamp_seconds",
        "When the running configuration was loaded",
        value=d.loaded_at,
    )
    ops = CounterMetricFamily(
        "healthd_ipvs_ops", "IPVS operations the kernel accepted, by kind", labels=["op"]
    )
    errors = CounterMetricFamily(
        "healthd_ipvs_op_errors", "IPVS operations the kernel refused, by kind", labels=["op"]
    )
    for name in sorted(set(drv.ops) | set(drv.op_errors)):
        ops.add_metric([name], drv.ops[name])
        errors.add_metric([name], drv.op_errors[name])
    yield ops
    yield errors
    yield CounterMetricFamily("healthd_ipvs_dumps", "IPVS table dumps", value=drv.dumps)
    yield CounterMetricFamily(
        "healthd_ipvs_dump_errors", "IPVS table dumps that failed", value=drv.dump_errors
    )
    if drv.last_dump_at is not None:
        yield GaugeMetricFamily(
            "healthd_ipvs_dump_timestamp_seconds",
            "When the IPVS counters were last read",
            value=drv.last_dump_at,
        )
    yield from _reconcile_families(s)
    yield CounterMetricFamily(
        "healthd_checks", "Check results folded into health", value=engine.progress.results
    )
    rate = sum(
        1 / slot.key.checkinterval
        for slot in engine._slots.by_key.values()
        if slot.probe is not None
    )
    yield GaugeMetricFamily(
        "healthd_checks_configured_per_second",
        "Checks per second the configuration asks for",
        value=rate,
    )
    yield GaugeMetricFamily(
        "healthd_checks_achieved_per_second",
        "Checks finished per second over the last 10 s",
        value=s.achieved,
    )
    yield GaugeMetricFamily(
        "healthd_event_loop_lag_seconds", "Largest event-loop lag over the last 10 s", value=s.lag
    )
    yield GaugeMetricFamily(
        "healthd_overrides", "Operator overrides in force", value=len(engine.overrides)
    )


def _reconcile_families(s: Stats) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    r = s.reconciles
    runs = CounterMetricFamily(
        "healthd_reconciles",
        "Reconciles by kind: full (against a dump) or incremental",
        labels=["kind"],
    )
    runs.add_metric(["full"], r.full)
    runs.add_metric(["incremental"], r.incremental)
    yield runs
    yield CounterMetricFamily(
        "healthd_reconcile_failures",
        "Services whose ops the kernel refused in a reconcile",
        value=r.failed,
    )
    yield CounterMetricFamily(
        "healthd_drift_repaired_ops",
        "Ops a periodic resync applied with no change pending (drift)",
        value=r.drift,
    )
    yield GaugeMetricFamily(
        "healthd_resync_duration_seconds",
        "How long the last full reconcile took, dump included",
        value=r.last_full_seconds,
    )
