"""The daemon core: folds check results into health and keeps the IPVS table in line with it.

Level-triggered and incremental: a health or maintenance change marks only its virtuals'
services dirty, and the reconcile task plans those against the engine's cached view of the
kernel table (kept current from each applied op). Start, reload and the periodic resync
dump the kernel and plan everything, which repairs drift. Kernel errors are logged and
retried after a fresh dump, never fatal. Signals, pid files and config loading belong to
healthd.daemon; the check library and the driver are injected. The kernel side (ticks,
resync, ops, fallback changes) lives in healthd.kernel_sync, a mixin of Engine.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Protocol

import checks
from checks.base import Result
from healthd import health as hl
from healthd import logs, maintenance, probes
from healthd.clock import Clock, SystemClock
from healthd.hooks import HookRunner
from healthd.ipvs.driver import IPVSDriver
from healthd.ipvs.types import (
    DelService,
    ServiceKey,
    Table,
)
from healthd.kernel_sync import KernelSync
from healthd.model import Config, Real, Virtual
from healthd.reconcile import (
    initial_health,
    owned_keys,
    service_key,
)
from healthd.scheduler import Job, Scheduler, raise_nofile
from healthd.state import KernelView, Slot, Slots, virtual_view
from healthd.watchdog import Progress

log = logs.get_logger("healthd.engine")

HOOK_DRAIN = 5.0  # seconds shutdown waits for queued fallbackcommands


class Listener(Protocol):
    """Observer of the engine (alerts, monitorfile, the daemon); every method is optional.

    The engine calls only the methods a listener has; a class that subclasses Listener
    explicitly inherits no-op defaults. A listener that raises is logged
    (`listener.failed`) and the engine goes on. Calls are awaited in order, so a listener
    should hand slow work (mail, files) to its own task.
    """

    async def on_result(self, virtual: Virtual, real: Real, result: Result) -> None: ...

    async def on_transition(
        self, virtual: Virtual, real: Real, up: bool, result: Result | None, reason: str
    ) -> None: ...

    async def on_fallback(self, virtual: Virtual, active: bool) -> None: ...

    async def on_state(self, state: str) -> None: ...  # starting, running, reloading, stopping


class _Stopped(Exception):
    """Ends run()'s task group when shutdown() is called."""


class Engine(KernelSync):
    """Supervises one configuration: probes, health, reconciliation, fallback hooks."""

    def __init__(
        self,
        config: Config,
        driver: IPVSDriver,
        *,
        clock: Clock | None = None,
        listeners: Sequence[object] = (),
        check_factory: probes.CheckFactory = checks.load,
        jitter: Callable[[], float] = random.random,
        hooks: HookRunner | None = None,
    ) -> None:
        self.config = config
        self.driver = driver
        self.clock = clock or SystemClock()
        self.state = "starting"
        self._listeners = list(listeners)
        # on_result runs once per check: only the listeners that have it are called
        self._result_listeners = [x for x in self._listeners if hasattr(x, "on_result")]
        self._load = check_factory
        self._hooks = hooks or HookRunner()
        self._slots = Slots()  # a Mapping of each check key's health, for the reconciler
        self._forced: set[hl.CheckKey] = set()
        self._fallback: dict[str, bool] = {}
        self._retired: set[ServiceKey] = set()  # services of earlier configs still to delete
        self._hostnames: dict[object, str | None] = {}
        self._kernel = KernelView()  # the table as last known, and what to plan next
        self._wake = asyncio.Event()  # set when a service is dirty
        self._queue: asyncio.Queue[tuple[Hashable, Result]] = asyncio.Queue()
        sink = lambda key, result: self._queue.put_nowait((key, result))  # noqa: E731
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._changed_since_resync = False
        self.progress = Progress()  # counters for the daemon's watchdog
        self.scheduler = Scheduler(
            sink,
            clock=self.clock,
            max_in_flight=config.max_in_flight,
            jitter=jitter,
            skip=self._skip,
        )

    # --- lifecycle --------------------------------------------------------------------

    async def run(self) -> None:
        """Adopt the kernel table, reconcile, start the probes, then supervise until stopped."""
        await self._set_state("starting")
        raise_nofile()
        actual = await self._dump()
        self._slots.install(
            self.config, initial_health(self.config, actual or Table(), now=self._now())
        )
        self._kernel.index(self.config, self._slots)
        await self._scan_maintenance(reconcile=False)
        await self._reconcile(starting=True)
        self._schedule()
        await self._set_state("running")
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._consume(), name="engine outcomes")
                tg.create_task(self._reconcile_loop(), name="engine reconcile")
                tg.create_task(self._resync_loop(), name="engine resync")
                tg.create_task(self._maintenance_loop(), name="engine maintenance")
                tg.create_task(self._watch(), name="engine watch")
        except* _Stopped:
            pass
        finally:
            await self.scheduler.aclose()

    async def reload(self, config: Config) -> None:
        """Switch to a new config with the least table change, keeping unchanged reals' health."""
        await self._set_state("reloading")
        old = self.config
        actual = await self._dump()
        fresh = initial_health(config, actual or self._kernel.table(), now=self._now())
        self._retired |= owned_keys(old) - owned_keys(config)
        self.config = config
        kept, added, removed = self._slots.install(config, fresh)
        self._kernel.index(self.config, self._slots)
        self._forced &= self._slots.by_key.keys()
        old_commands = {v.name: v.fallbackcommand for v in old.virtuals}
        for virtual in config.virtuals:
            if old_commands.get(virtual.name, "") != virtual.fallbackcommand:
                self._fallback.pop(virtual.name, None)  # new or changed: run it once again
        await self._scan_maintenance(reconcile=False)
        await self._reconcile(starting=True)
        self._schedule()
        log.info(
            logs.ENGINE_RELOADED,
            path=config.path,
            kept=kept,
            added=added,
            removed=removed,
        )
        await self._set_state("running")

    async def shutdown(self) -> None:
        """Stop the probes and apply cleanstop: delete each cleanstop=yes virtual's service."""
        await self._set_state("stopping")
        self._stop.set()
        await self.scheduler.aclose()
        async with self._lock:
            present = self._kernel.services
            for virtual in self.config.virtuals:
                key = service_key(virtual)
                # ldirectord: cleanstop=no leaves the virtual exactly as it is (ld_stop)
                if virtual.cleanstop and key in present:
                    await self._apply_op(DelService(key))
        await self._hooks.drain(HOOK_DRAIN)

    def snapshot(self) -> dict[str, object]:
        """Return the status view: every virtual, each real's health, last result, weight."""
        views = [
            virtual_view(
                v, self._slots, self._forced, self.table, self._fallback.get(v.name, False)
            )
            for v in self.config.virtuals
        ]
        return {"state": self.state, "config": self.config.path, "virtuals": views}

    # --- outcomes and health ------------------------------------------------------------

    def _skip(self, slot_id: Hashable) -> Result | None:
        # ldirectord: a real in maintenance is not checked at all (_check_real_for_maintenance)
        if self._forced:
            slot = self._slots.by_id.get(slot_id)  # type: ignore[call-overload]
            if slot is not None and slot.key in self._forced:
                return Result.down("maintenance", "in maintenancedir")
        return None

    async def _consume(self) -> None:
        """Fold results into health as they come; a transition only marks its services dirty.

        Results never wait behind a reconcile: the reconcile task runs on its own and takes
        everything that is dirty when it starts.
        """
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            for key, result in batch:
                await self._observe(key, result)
            self.progress.results += len(batch)

    def _mark(self, slot: Slot) -> None:
        """Mark the services of a slot's virtuals for the next reconcile tick."""
        self._kernel.dirty.update(slot.services)
        self._wake.set()

    async def _observe(self, slot_id: Hashable, result: Result) -> None:
        slot = self._slots.by_id.get(slot_id)  # type: ignore[call-overload]
        if slot is None:
            return  # a result from a probe that a reload removed
        key = slot.key
        new, transition = hl.observe(
            slot.health, result, failurecount=key.failurecount, rise=key.rise, now=self._now()
        )
        slot.health = new
        if self._result_listeners:
            for virtual, real in slot.members:
                await self._notify("on_result", virtual, real, result)
        if transition is None:
            return
        self._mark(slot)
        for virtual, real in slot.members:
            await self._transition(virtual, real, new, transition, result)

    async def _transition(
        self,
        virtual: Virtual,
        real: Real,
        health: hl.Health,
        transition: hl.Transition,
        result: Result | None,
    ) -> None:
        up = transition.kind is hl.Kind.UP
        action = "restore" if up else "quiesce" if virtual.quiescent else "remove"
        log.info(
            logs.REAL_UP if up else logs.REAL_DOWN,
            virtual=virtual.name,
            real=real.endpoint,
            check=probes.describe(virtual),
            reason=transition.reason,
            detail=transition.detail,
            failures=health.failures,
            failurecount=virtual.failurecount,
            action=action,
        )
        self._changed_since_resync = True
        await self._notify("on_transition", virtual, real, up, result, transition.reason)

    # --- maintenance ------------------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.checkinterval)
            await self._scan_maintenance(reconcile=True)

    async def _scan_maintenance(self, *, reconcile: bool) -> None:
        """Re-read maintenancedir; force newly listed reals down, release the others.

        With `reconcile`, the changed reals' virtuals are marked for the next tick (marked
        last, so the tick sees the new forced set); without, the caller plans everything.
        """
        directory = self.config.maintenancedir
        names = maintenance.scan(directory) if directory else set()
        hostnames = await self._resolve(names) if names else {}
        forced = maintenance.forced_down(names, self.config, hostnames) & self._slots.by_key.keys()
        now = self._now()
        for key in forced - self._forced:
            slot = self._slots.by_key[key]
            new, transition = hl.force(slot.health, "maintenance", now=now)
            slot.health = new
            for virtual, real in slot.members:
                log.info(
                    logs.REAL_MAINTENANCE, virtual=virtual.name, real=real.endpoint, state="on"
                )
                if transition is not None:
                    await self._transition(virtual, real, new, transition, None)
        for key in self._forced - forced:
            slot = self._slots.by_key[key]
            slot.health = hl.release(slot.health)
            for virtual, real in slot.members:
                log.info(
                    logs.REAL_MAINTENANCE, virtual=virtual.name, real=real.endpoint, state="off"
                )
        changed, self._forced = forced ^ self._forced, forced
        if reconcile:
            for key in changed:
                self._mark(self._slots.by_key[key])

    async def _resolve(self, names: set[str]) -> Mapping[Any, str]:
        """Return reverse names of the reals, looked up once each (only when names exist)."""
        addresses = {
            real.address for slot in self._slots.by_key.values() for _, real in slot.members
        }
        plain = {n.rsplit(":", 1)[0].strip("[]") for n in names}
        if plain <= {str(a) for a in addresses}:
            return {}  # every name is an address form: no resolver needed
        for address in addresses - self._hostnames.keys():
            self._hostnames[address] = await asyncio.to_thread(maintenance.lookup_hostname, address)
        return {a: n for a, n in self._hostnames.items() if n}

    # --- plumbing ---------------------------------------------------------------------

    async def _reconcile(
        self, *, full: bool = False, starting: bool = False, periodic: bool = False
    ) -> None:
        # counted for the watchdog: a reconcile that never ends (a hung driver) stops the pings
        self.progress.reconciling += 1
        try:
            await super()._reconcile(full=full, starting=starting, periodic=periodic)
        finally:
            self.progress.reconciling -= 1
            self.progress.reconciles += 1

    def _schedule(self) -> None:
        jobs = self._jobs()
        self.scheduler.sync(jobs)
        self.progress.schedule(jobs.values())

    def _jobs(self) -> dict[Hashable, Job]:
        jobs: dict[Hashable, Job] = {}
        for slot in self._slots.by_key.values():
            virtual, real = slot.members[0]
            slot.probe = slot.probe or probes.build(virtual, real, self._load)
            if slot.probe is None:
                continue  # checktype on / off: never checked
            names = ",".join(dict.fromkeys(v.name for v, _ in slot.members))
            labels = {"virtual": names, "real": real.endpoint, "check": probes.describe(virtual)}
            jobs[slot.id] = Job(slot.probe, slot.key.checkinterval, labels)
        return jobs

    async def _watch(self) -> None:
        """End run(): by shutdown(), or by a prober that died of a bug (re-raised here)."""
        failed = self.scheduler.failed
        stop = asyncio.create_task(self._stop.wait())
        waits: set[asyncio.Future[Any]] = {stop} | ({failed} if failed is not None else set())
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if failed is not None and failed.done():
            failed.result()
        raise _Stopped

    async def _set_state(self, state: str) -> None:
        self.state = state
        log.debug(logs.ENGINE_STATE, state=state)
        await self._notify("on_state", state)

    # --- read access for the status view ---------------------------------------------

    @property
    def health(self) -> Mapping[hl.CheckKey, hl.Health]:
        return self._slots

    @property
    def forced(self) -> frozenset[hl.CheckKey]:
        return frozenset(self._forced)

    @property
    def table(self) -> Table:
        return self._kernel.table()

    @property
    def fallback_active(self) -> Mapping[str, bool]:
        return self._fallback
