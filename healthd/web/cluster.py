"""The cluster's metric families: the sync daemon's roles and each announced route.

    healthd_syncd_state{role}          1 while the kernel runs that sync daemon thread
    healthd_syncd_configured{role}     1 when syncd= asks for it (both absent without syncd=)
    healthd_route_announced{route}     1 while healthd holds the route (or address) in the kernel
    healthd_route_failing{route}       1 while the kernel refuses its last change

Read at scrape time from the plugins (healthd.syncd.SyncdControl and
healthd.routes.announcer.Announcer); nothing is yielded for a configuration without them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from healthd.ipvs.syncd_wire import ROLES
from healthd.routes.announcer import Announcer
from healthd.routes.plan import configured
from healthd.syncd import SyncdControl, wanted


def cluster_families(plugins: Iterable[object]) -> Iterator[Any]:
    """Yield the families of the cluster plugins among `plugins`."""
    for plugin in plugins:
        if isinstance(plugin, SyncdControl):
            yield from _syncd(plugin)
        elif isinstance(plugin, Announcer):
            yield from _routes(plugin)


def _syncd(plugin: SyncdControl) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    want = wanted(plugin.config.syncd)
    if want is None:
        return  # syncd= not written: healthd neither reads nor manages the daemons
    state = GaugeMetricFamily(
        "healthd_syncd_state", "1 while the kernel runs this IPVS sync daemon", labels=["role"]
    )
    for role, running in plugin.state().items():
        state.add_metric([role], int(running))
    yield state
    asked = GaugeMetricFamily(
        "healthd_syncd_configured", "1 when syncd= asks for this sync daemon", labels=["role"]
    )
    for role in ROLES:
        asked.add_metric([role], int(any(d.role == role for d in want)))
    yield asked


def _routes(plugin: Announcer) -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    routes = sorted(configured(plugin.config.virtuals) | plugin.announced, key=str)
    if not routes:
        return
    held = GaugeMetricFamily(
        "healthd_route_announced", "1 while healthd announces this route", labels=["route"]
    )
    failing = GaugeMetricFamily(
        "healthd_route_failing", "1 while the kernel refuses this route's change", labels=["route"]
    )
    for route in routes:
        held.add_metric([str(route)], int(route in plugin.announced))
        failing.add_metric([str(route)], int(route in plugin.failing))
    yield held
    yield failing
