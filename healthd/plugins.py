"""Plugins: what the engine and the daemon tell the outside world, and the fan-out to them.

A plugin (e-mail alerts, the monitor file, the heap settling, the daemon's own readiness)
subclasses Plugin and overrides the hooks it cares about; the rest are no-ops:

    on_result(virtual, real, result)    every check result (the hot path)
    on_transition(virtual, real, up, result, reason)
    on_fallback(virtual, active)        a virtual's "no real is up" state changed
    on_state(state)                     starting, running, reloading, stopping
    on_reconcile(report)                what one reconcile did (ops, failures, drift, time)
    start()                             before the daemon serves: bind what must be bound
    run()                               work of its own, run in the daemon's task group
    reconfigure(config)                 a reload took effect
    aclose()                            the daemon is stopping: finish what is queued
    view()                              facts of its own for the status view

Plugins is the fan-out: calls are awaited in order, a plugin that raises is logged
(`listener.failed`) and the others still hear about it, and on_result goes only to the
plugins that override it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from checks.base import Result
from healthd import heap, logs
from healthd.model import Config, Real, Virtual

log = logs.get_logger("healthd.engine")


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What one reconcile did, for plugins (metrics): `on_reconcile(report)`."""

    full: bool  # against a fresh dump (start, reload, resync, after a failure)
    periodic: bool  # the periodic resync
    ops: int  # ops planned
    failed: int  # services whose ops the kernel refused
    drift: int  # ops a periodic resync needed with no change pending: drift repaired
    seconds: float  # how long it took, dump included


class Plugin:
    """Base of every plugin: each hook is a no-op until overridden."""

    async def on_result(self, virtual: Virtual, real: Real, result: Result) -> None:
        """One check result of one real (runs once per check: keep it cheap)."""

    async def on_transition(
        self, virtual: Virtual, real: Real, up: bool, result: Result | None, reason: str
    ) -> None:
        """A real went up or down (result is None for a maintenance change)."""

    async def on_fallback(self, virtual: Virtual, active: bool) -> None:
        """A virtual's fallback state changed (active: no real carries traffic)."""

    async def on_state(self, state: str) -> None:
        """The engine's state changed: starting, running, reloading or stopping."""

    async def on_reconcile(self, report: Reconciled) -> None:
        """A reconcile finished: what it planned, what failed, how long it took."""

    async def start(self) -> None:
        """Before the daemon serves; a HealthdError (an address in use) stops the start."""

    async def run(self) -> None:
        """The plugin's own work (alert delivery), cancelled when the daemon stops.

        It must end when cancelled: the daemon's task group waits for it. A loop that waits
        for an event or a period uses `async with asyncio.timeout(period)`, never
        `asyncio.wait_for`: on Python 3.11 wait_for returns normally when the event is set
        in the same loop turn as the cancellation, the cancellation is lost, and the
        daemon hangs on stop.
        """

    def reconfigure(self, config: Config) -> None:
        """A new configuration took effect."""

    async def aclose(self) -> None:
        """The daemon is stopping: finish what is queued, within the plugin's own grace."""

    def view(self) -> Mapping[str, object]:
        """Keys of its own for the status view (`healthd status`, /api/v1); none by default."""
        return {}


class Plugins:
    """Fans each hook out to every plugin, in order, isolating their failures."""

    def __init__(self, plugins: Sequence[Plugin] = ()) -> None:
        self.all = list(plugins)
        # on_result runs once per check: only the plugins that override it are called
        self._results = [p for p in self.all if type(p).on_result is not Plugin.on_result]
        self.workers = [p for p in self.all if type(p).run is not Plugin.run]

    @property
    def want_results(self) -> bool:
        """Whether any plugin listens to every check result."""
        return bool(self._results)

    async def on_result(self, virtual: Virtual, real: Real, result: Result) -> None:
        for plugin in self._results:
            try:
                await plugin.on_result(virtual, real, result)
            except Exception:  # isolation boundary: a plugin never stops the engine
                log.exception(
                    logs.LISTENER_FAILED, listener=type(plugin).__name__, hook="on_result"
                )

    async def on_transition(
        self, virtual: Virtual, real: Real, up: bool, result: Result | None, reason: str
    ) -> None:
        for plugin in self.all:
            try:
                await plugin.on_transition(virtual, real, up, result, reason)
            except Exception:  # isolation boundary
                log.exception(
                    logs.LISTENER_FAILED, listener=type(plugin).__name__, hook="on_transition"
                )

    async def on_fallback(self, virtual: Virtual, active: bool) -> None:
        for plugin in self.all:
            try:
                await plugin.on_fallback(virtual, active)
            except Exception:  # isolation boundary
                log.exception(
                    logs.LISTENER_FAILED, listener=type(plugin).__name__, hook="on_fallback"
                )

    async def on_state(self, state: str) -> None:
        for plugin in self.all:
            try:
                await plugin.on_state(state)
            except Exception:  # isolation boundary
                log.exception(logs.LISTENER_FAILED, listener=_name(plugin), hook="on_state")

    async def on_reconcile(self, report: Reconciled) -> None:
        for plugin in self.all:
            try:
                await plugin.on_reconcile(report)
            except Exception:  # isolation boundary
                log.exception(logs.LISTENER_FAILED, listener=_name(plugin), hook="on_reconcile")

    async def start(self) -> None:
        for plugin in self.all:
            await plugin.start()  # not isolated: a plugin that cannot start stops the daemon

    def reconfigure(self, config: Config) -> None:
        for plugin in self.all:
            plugin.reconfigure(config)

    async def aclose(self) -> None:
        for plugin in self.all:
            await plugin.aclose()

    def view(self) -> dict[str, object]:
        """Return the plugins' own status keys, merged (the cluster plugins' state)."""
        merged: dict[str, object] = {}
        for plugin in self.all:
            merged.update(plugin.view())
        return merged


def _name(plugin: Plugin) -> str:
    return type(plugin).__name__


class Settle(Plugin):
    """Settles the heap (healthd.heap) each time a config comes into force."""

    async def on_state(self, state: str) -> None:
        """On `running` (after the start and after every reload), collect and freeze."""
        if state == "running":
            heap.settle()
