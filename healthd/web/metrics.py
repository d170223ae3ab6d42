"""Prometheus metrics, rendered from the engine's state at scrape time.

Two parts in one exposition: the daemon-wide families go through prometheus_client (a
custom collector on a registry of our own, with its process collector); the per-real and
per-virtual families, tens of thousands of samples at 5,000 reals, are written here
directly with label strings made once per configuration, because prometheus_client's
generic renderer takes about a second of CPU for them (bench/RESULTS.md). The format is
the same text format 0.0.4 (checked by `promtool check metrics` in the tests).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from healthd import __version__
from healthd.web import families
from healthd.web.cluster import cluster_families
from healthd.web.stats import Stats

if TYPE_CHECKING:
    from healthd.engine import Engine
    from healthd.ipvs.counting import CountingDriver

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DaemonFacts(Protocol):
    """What the metrics read of healthd.daemon.Daemon."""

    reloads: int
    reload_failures: int
    loaded_at: float


class Metrics:
    """Renders /metrics for one daemon: its engine, the Stats listener, the counting driver."""

    def __init__(
        self,
        engine: Engine,
        stats: Stats,
        driver: CountingDriver,
        daemon: DaemonFacts,
        *,
        cluster: Sequence[object] = (),
    ) -> None:
        from prometheus_client import CollectorRegistry, ProcessCollector

        self.engine, self.stats, self.driver, self.daemon = engine, stats, driver, daemon
        self.cluster = tuple(cluster)  # the announcer and the sync daemon (web/cluster.py)
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.registry.register(_DaemonCollector(self))
        self._seen: tuple[object, object] | None = None
        self._groups: list[families.Group] = []

    def render(self) -> bytes:
        """Return the whole exposition (daemon families, then per-virtual and per-real)."""
        from prometheus_client import generate_latest

        return b"".join([generate_latest(self.registry), *self.families()])

    def families(self) -> list[bytes | bytearray]:
        """Return the per-virtual and per-real families' text, as chunks to join in order."""
        engine = self.engine
        slots = engine.slots
        if self._seen != (engine.config, slots):
            self._seen = (engine.config, slots)
            self._groups = families.index(engine.config, slots, self.stats)
        dump = self.driver.last_dump
        sources = families.Sources(
            forced=engine.forced,
            kernel=engine.kernel_record,
            dump=dump.services if dump is not None else {},
            overrides=engine.overrides,
            fallback=engine.fallback_active,
        )
        return families.render(self._groups, sources)


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
    yield from _kernel_families(drv)
    yield from _reconcile_families(s)
    yield from _check_families(m)
    yield from cluster_families(m.cluster)


def _kernel_families(drv: CountingDriver) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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


def _check_families(m: Metrics) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    s, engine = m.stats, m.engine
    yield CounterMetricFamily(
        "healthd_checks", "Check results folded into health", value=engine.progress.results
    )
    rate = sum(
        1 / slot.key.checkinterval for slot in engine.slots.values() if slot.probe is not None
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
