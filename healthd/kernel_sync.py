"""The engine's kernel side: reconcile ticks, the periodic resync, ops, fallback changes.

A mixin of healthd.engine.Engine, which owns the state it uses (config, driver, the kernel
view, health slots, the forced set, the lock). Plans come from healthd.state/reconcile; this
module applies them, logs each op and notes fallback changes; it judges no health.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from healthd import health as hl
from healthd import logs
from healthd.clock import Clock
from healthd.errors import DriverError
from healthd.hooks import HookRunner
from healthd.ipvs.driver import IPVSDriver
from healthd.ipvs.types import Op, ServiceKey, Table
from healthd.model import Config, Virtual
from healthd.reconcile import is_up, owned_keys
from healthd.state import KernelView, Slots, op_service

log = logs.get_logger("healthd.engine")


class KernelSync:
    """Keeps the IPVS table in line with health: dirty ticks, full resyncs, fallbacks."""

    config: Config
    driver: IPVSDriver
    clock: Clock
    _listeners: list[object]
    _hooks: HookRunner
    _slots: Slots
    _forced: set[hl.CheckKey]
    _fallback: dict[str, bool]
    _retired: set[ServiceKey]
    _kernel: KernelView
    _wake: asyncio.Event
    _lock: asyncio.Lock
    _changed_since_resync: bool

    def _now(self) -> float:
        return self.clock.monotonic()

    # --- reconciliation ---------------------------------------------------------------

    async def _resync_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.resync_interval)
            await self._reconcile(full=True, periodic=True)

    async def _reconcile_loop(self) -> None:
        """Reconcile whatever is dirty, once per wake-up; marks made meanwhile wait for the next."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._reconcile()

    async def _dump(self) -> Table | None:
        try:
            return await self.driver.dump()
        except DriverError as exc:
            # expected kernel trouble: one line, no traceback; the next resync retries
            log.error(logs.IPVS_DUMP_FAILED, errno=exc.errno, detail=exc.message)  # noqa: TRY400
            return None

    async def _reconcile(
        self, *, full: bool = False, starting: bool = False, periodic: bool = False
    ) -> None:
        """Plan and apply the dirty services against the cache, or (full) all against a dump.

        A full reconcile runs at start, reload, each resync, and after a failed op (the
        cache may then be wrong); then the fallback changes of the virtuals planned.
        """
        async with self._lock:
            start = self._now()
            kernel = self._kernel
            full = full or starting or kernel.stale
            dirty = kernel.take()
            if full:
                actual = await self._dump()
                if actual is None:
                    kernel.dirty |= dirty
                    kernel.stale = self._changed_since_resync = True
                    return  # retried at the next resync
                kernel.replace(actual)
                owned = owned_keys(self.config, self._retired)
                ops = kernel.plan_all(
                    self.config, self._slots, self._forced, owned=owned, starting=starting
                )
            else:
                ops = kernel.plan_dirty(dirty, self.config, self._slots, self._forced)
            if periodic and ops and not self._changed_since_resync:
                log.warning(logs.IPVS_DRIFT_DETECTED, ops=len(ops))
            failed = await self._apply_ops(ops)
            # what failed is retried after a fresh dump: at the next tick or resync
            kernel.stale = bool(failed)
            kernel.dirty |= failed
            self._retired &= kernel.services.keys()
            # a change still pending or a failure still to retry is not drift at the resync
            self._changed_since_resync = bool(kernel.dirty)
            elapsed = round((self._now() - start) * 1000, 1)
            level = log.info if ops else log.debug
            level(logs.IPVS_RESYNCED, ops=len(ops), duration_ms=elapsed, periodic=periodic)
        await self._update_fallbacks(self.config.virtuals if full else kernel.virtuals_of(dirty))

    async def _apply_ops(self, ops: list[Op]) -> set[ServiceKey]:
        """Apply ops in order, keeping the record current; return the services that failed."""
        failed: set[ServiceKey] = set()
        for op in ops:
            if await self._apply_op(op):
                self._kernel.applied(op)
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
        """Note each virtual whose 'no real is up' state changed: log, listeners, command."""
        for virtual in virtuals:
            active = not any(
                is_up(virtual, real, self._slots, self._forced) for real in virtual.reals
            )
            if self._fallback.get(virtual.name) == active:
                continue
            self._fallback[virtual.name] = active
            if virtual.fallback is not None or virtual.fallbackcommand:
                event = logs.FALLBACK_ON if active else logs.FALLBACK_OFF
                fallback = str(virtual.fallback.address) if virtual.fallback else None
                log.info(event, virtual=virtual.name, fallback=fallback)
            self._hooks.fallback(virtual, active)
            await self._notify("on_fallback", virtual, active)

    # --- listeners ------------------------------------------------------------------

    async def _notify(self, method: str, *args: object) -> None:
        for listener in self._listeners:
            fn = getattr(listener, method, None)
            if fn is None:
                continue
            try:
                await fn(*args)
            except Exception:  # isolation boundary: a listener (alerts, monitorfile) is a plugin
                log.exception(logs.LISTENER_FAILED, listener=type(listener).__name__, hook=method)
