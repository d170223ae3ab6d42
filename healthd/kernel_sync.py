"""KernelSync: keeps the IPVS table in line with the health book.

It owns the kernel side of the engine: the driver, its record of the table (KernelView,
with the dirty services), the lock that keeps one reconcile at a time, the services of
earlier configurations still to delete, and each virtual's fallback state. A health change
marks services dirty; the reconcile task plans those against the record; start, reload,
each resync and any failed op dump the kernel and plan everything, which repairs drift.
Kernel errors are logged and retried, never fatal. It judges no health.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from healthd import logs
from healthd.book import HealthBook
from healthd.clock import Clock
from healthd.errors import DriverError
from healthd.hooks import HookRunner
from healthd.ipvs.driver import IPVSDriver
from healthd.ipvs.types import DelService, Op, ServiceEntry, ServiceKey, Table
from healthd.kernel_view import KernelView, op_service
from healthd.model import Virtual
from healthd.overrides import Overrides
from healthd.plugins import Plugins, Reconciled
from healthd.reconcile import key_up, service_key
from healthd.topology import Topology
from healthd.watchdog import Progress

log = logs.get_logger("healthd.engine")


class KernelSync:
    """Applies plans for one engine: dirty ticks, full resyncs, fallbacks, cleanstop."""

    def __init__(
        self,
        driver: IPVSDriver,
        book: HealthBook,
        topology: Topology,
        overrides: Overrides,
        *,
        clock: Clock,
        plugins: Plugins,
        hooks: HookRunner,
        progress: Progress,
    ) -> None:
        self.driver = driver
        self.book = book
        self.topology = topology
        self.overrides = overrides  # the operator's drain/maint/weight, read by the planner
        self.view = KernelView()  # the table as last known, and what to plan next
        self.fallback: dict[str, bool] = {}  # each virtual's "no real is up" state
        self.changed_since_resync = False  # a transition since the last resync is no drift
        self._clock = clock
        self._plugins = plugins
        self._hooks = hooks
        self._progress = progress
        self._retired: set[ServiceKey] = set()  # services of earlier configs still to delete
        self._wake = asyncio.Event()  # set when a service is dirty
        self._lock = asyncio.Lock()

    def switch(self, topology: Topology) -> None:
        """Plan for `topology` from now on; services only the old one owned are retired."""
        self._retired |= self.topology.owned - topology.owned
        commands = {v.name: v.fallbackcommand for v in self.topology.config.virtuals}
        for virtual in topology.config.virtuals:
            if commands.get(virtual.name, "") != virtual.fallbackcommand:
                self.fallback.pop(virtual.name, None)  # new or changed: run it once again
        self.topology = topology
        self.view.index(topology)

    def mark(self, services: Iterable[ServiceKey]) -> None:
        """Mark services for the next reconcile tick."""
        self.view.dirty.update(services)
        self._wake.set()

    @property
    def record(self) -> Mapping[ServiceKey, ServiceEntry]:
        """The table as last known (read-only, no copy: the metrics read it at each scrape)."""
        return self.view.services

    def table(self) -> Table:
        """Return a snapshot of the table as last known."""
        return self.view.table()

    async def resync_loop(self) -> None:
        while True:
            await self._clock.sleep(self.topology.config.resync_interval)
            await self.reconcile(full=True, periodic=True)

    async def reconcile_loop(self) -> None:
        """Reconcile whatever is dirty, once per wake-up; marks made meanwhile wait for the next."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.reconcile()

    async def dump(self) -> Table | None:
        """Return the kernel's table, or None after logging why it could not be read."""
        try:
            return await self.driver.dump()
        except DriverError as exc:
            # expected kernel trouble: one line, no traceback; the next resync retries
            log.error(logs.IPVS_DUMP_FAILED, errno=exc.errno, detail=exc.message)  # noqa: TRY400
            return None

    async def reconcile(
        self, *, full: bool = False, starting: bool = False, periodic: bool = False
    ) -> None:
        """Plan and apply the dirty services against the record, or (full) all against a dump.

        A full reconcile runs at start, reload, each resync, and after a failed op (the
        record may then be wrong); then the fallback changes of the virtuals planned.
        """
        # counted for the watchdog: a reconcile that never ends (a hung driver) stops the pings
        self._progress.reconciling += 1
        try:
            done = await self._reconcile(full=full, starting=starting, periodic=periodic)
            if done is not None:
                virtuals, report = done
                await self._plugins.on_reconcile(report)
                await self._update_fallbacks(virtuals)
        finally:
            self._progress.reconciling -= 1
            self._progress.reconciles += 1

    async def _reconcile(
        self, *, full: bool, starting: bool, periodic: bool
    ) -> tuple[list[Virtual], Reconciled] | None:
        async with self._lock:
            start = self._clock.monotonic()
            view, config = self.view, self.topology.config
            full = full or starting or view.stale
            dirty = view.take()
            if full:
                actual = await self.dump()
                if actual is None:
                    view.dirty |= dirty
                    view.stale = self.changed_since_resync = True
                    return None  # retried at the next resync
                view.replace(actual)
            ops = self._plan(dirty, full=full, starting=starting)
            drift = len(ops) if periodic and ops and not self.changed_since_resync else 0
            if drift:
                log.warning(logs.IPVS_DRIFT_DETECTED, ops=len(ops))
            failed = await self._apply_ops(ops)
            # what failed is retried after a fresh dump: at the next tick or resync
            view.stale = bool(failed)
            view.dirty |= failed
            self._retired &= view.services.keys()
            # a change still pending or a failure still to retry is not drift at the resync
            self.changed_since_resync = bool(view.dirty)
            seconds = self._clock.monotonic() - start
            level = log.info if ops else log.debug
            level(
                logs.IPVS_RESYNCED,
                ops=len(ops),
                duration_ms=round(seconds * 1000, 1),
                periodic=periodic,
            )
        report = Reconciled(full, periodic, len(ops), len(failed), drift, seconds)
        return (list(config.virtuals) if full else view.virtuals_of(dirty)), report

    def _plan(self, dirty: set[ServiceKey], *, full: bool, starting: bool) -> list[Op]:
        """Return the plan: every service against a fresh dump (full), or the dirty ones."""
        view, config, book = self.view, self.topology.config, self.book
        by_service = self.overrides.by_service  # the operator's overrides, as data
        if not full:
            return view.plan_dirty(dirty, config, book, book.forced, by_service)
        owned = self.topology.owned | self._retired
        return view.plan_all(
            config, book, book.forced, owned=owned, starting=starting, overrides=by_service
        )

    async def _apply_ops(self, ops: list[Op]) -> set[ServiceKey]:
        """Apply ops in order, keeping the record current; return the services that failed."""
        failed: set[ServiceKey] = set()
        for op in ops:
            if await self._apply_op(op):
                self.view.applied(op)
            else:
                failed.add(op_service(op))
        return failed

    async def _apply_op(self, op: Op) -> bool:
        try:
            await self.driver.apply(op)
        except DriverError as exc:
            log.error(  # noqa: TRY400 - expected kernel trouble: one line, retried at resync
                logs.IPVS_APPLY_FAILED, op=str(op), errno=exc.errno, detail=exc.message
            )
            return False
        log.info(logs.IPVS_OP_APPLIED, op=str(op))
        return True

    async def _update_fallbacks(self, virtuals: Iterable[Virtual]) -> None:
        """Note each virtual whose 'no real is up' state changed: log, plugins, command."""
        book, by_service = self.book, self.overrides.by_service
        for virtual in virtuals:
            keys = self.topology.keys_of(virtual)
            held = by_service.get(service_key(virtual), {})  # drained, in maint: carry nothing
            active = not any(
                key_up(virtual, key, book, book.forced) and (i not in held or held[i].mode is None)
                for i, key in enumerate(keys)
            )
            if self.fallback.get(virtual.name) == active:
                continue
            self.fallback[virtual.name] = active
            if virtual.fallback is not None or virtual.fallbackcommand:
                event = logs.FALLBACK_ON if active else logs.FALLBACK_OFF
                fallback = str(virtual.fallback.address) if virtual.fallback else None
                log.info(event, virtual=virtual.name, fallback=fallback)
            self._hooks.fallback(virtual, active)
            await self._plugins.on_fallback(virtual, active)

    async def cleanstop(self) -> None:
        """Delete each cleanstop=yes virtual's service (ldirectord ld_stop)."""
        async with self._lock:
            present = self.view.services
            for svc, virtual in self.topology.virtuals.items():
                # ldirectord: cleanstop=no leaves the virtual exactly as it is
                if virtual.cleanstop and svc in present:
                    await self._apply_op(DelService(svc))
