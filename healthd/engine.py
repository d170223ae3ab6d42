"""The daemon core: folds check results into health and keeps the IPVS table in line with it.

An Engine composes objects that each own their state: the Topology of the configuration in
force (check groups, prepared services, the owned set, made once per config), the health
book (slots and the maintenance set), KernelSync (the driver, its record of the table, the
lock, dirty services, fallbacks), the Scheduler (one prober per health key) and the Plugins
fan-out. The engine consumes results, runs maintenance and moves the parts from one
configuration to the next; signals, pid files and config loading belong to healthd.daemon.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import checks
from checks.base import Result
from healthd import health as hl
from healthd import logs, maintenance, probes
from healthd.book import HealthBook, Slot
from healthd.clock import Clock, SystemClock
from healthd.hooks import HookRunner
from healthd.ipvs.driver import IPVSDriver
from healthd.ipvs.types import ServiceEntry, ServiceKey, Table
from healthd.kernel_sync import KernelSync
from healthd.model import Config, Real, Virtual
from healthd.overrides import Overrides, annotate
from healthd.plugins import Plugin, Plugins
from healthd.reconcile import service_key
from healthd.scheduler import Job, Scheduler, raise_nofile
from healthd.status_view import virtual_view
from healthd.topology import Topology
from healthd.watchdog import Progress

log = logs.get_logger("healthd.engine")

HOOK_DRAIN = 5.0  # seconds shutdown waits for queued fallbackcommands

Listener = Plugin  # the engine's observers are plugins (healthd.plugins)


class _Stopped(Exception):
    """Ends run()'s task group when shutdown() is called."""


class Engine:
    """Supervises one configuration: probes, health, reconciliation, fallback hooks."""

    def __init__(
        self,
        config: Config,
        driver: IPVSDriver,
        *,
        clock: Clock | None = None,
        listeners: Sequence[Plugin] = (),
        check_factory: probes.CheckFactory = checks.load,
        jitter: Callable[[], float] = random.random,
        hooks: HookRunner | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.state = "starting"
        self.topology = Topology.of(config)
        self.book = HealthBook()
        self.plugins = Plugins(listeners)
        self.progress = Progress()  # counters for the daemon's watchdog
        self._hooks = hooks or HookRunner()
        self.overrides = Overrides()  # the operator's drain/maint/weight (healthd ctl)
        self.kernel = KernelSync(
            driver,
            self.book,
            self.topology,
            self.overrides,
            clock=self.clock,
            plugins=self.plugins,
            hooks=self._hooks,
            progress=self.progress,
        )
        self._load = check_factory
        self._hostnames: dict[object, str | None] = {}
        self._queue: asyncio.Queue[tuple[Hashable, Result]] = asyncio.Queue()
        sink = lambda key, result: self._queue.put_nowait((key, result))  # noqa: E731
        self._stop = asyncio.Event()
        self.scheduler = Scheduler(
            sink,
            clock=self.clock,
            max_in_flight=config.max_in_flight,
            jitter=jitter,
            skip=self._skip,
        )

    @property
    def config(self) -> Config:
        return self.topology.config

    # --- lifecycle --------------------------------------------------------------------

    async def run(self) -> None:
        """Adopt the kernel table, reconcile, start the probes, then supervise until stopped."""
        await self._set_state("starting")
        raise_nofile()
        await self._adopt(self.topology)
        await self._set_state("running")
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._consume(), name="engine outcomes")
                tg.create_task(self.kernel.reconcile_loop(), name="engine reconcile")
                tg.create_task(self.kernel.resync_loop(), name="engine resync")
                tg.create_task(self._maintenance_loop(), name="engine maintenance")
                tg.create_task(self._watch(), name="engine watch")
        except* _Stopped:
            pass
        finally:
            await self.scheduler.aclose()

    async def reload(self, config: Config) -> None:
        """Switch to a new config with the least table change, keeping unchanged reals' health."""
        await self._set_state("reloading")
        kept, added, removed = await self._adopt(Topology.of(config))
        log.info(logs.ENGINE_RELOADED, path=config.path, kept=kept, added=added, removed=removed)
        await self._set_state("running")

    async def _adopt(self, topology: Topology) -> tuple[int, int, int]:
        """Put `topology` in force: health from the kernel, slots, maintenance, a full plan."""
        actual = await self.kernel.dump()
        fresh = topology.initial_health(actual or self.kernel.table(), now=self._now())
        self.topology = topology
        self.kernel.switch(topology)
        counts = self.book.install(topology, fresh)
        self.overrides.index(topology.config, service_key)
        await self._scan_maintenance(reconcile=False)
        await self.kernel.reconcile(starting=True)
        self._schedule()
        return counts

    async def shutdown(self) -> None:
        """Stop the probes and apply cleanstop: delete each cleanstop=yes virtual's service."""
        await self._set_state("stopping")
        self._stop.set()
        await self.scheduler.aclose()
        await self.kernel.cleanstop()
        await self._hooks.drain(HOOK_DRAIN)

    def snapshot(self) -> dict[str, object]:
        """Return the status view: every virtual, each real's health, last result, weight."""
        table, fallback = self.kernel.table(), self.kernel.fallback
        views = [
            virtual_view(v, self.topology.keys_of(v), self.book, table, fallback.get(v.name, False))
            for v in self.config.virtuals
        ]
        annotate(views, self.overrides)
        return {"state": self.state, "config": self.config.path, "virtuals": views}

    def touch(self, services: Iterable[ServiceKey]) -> None:
        """Plan these services at the next tick (an override of theirs changed)."""
        self.kernel.mark(services)

    # --- outcomes and health ------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.monotonic()

    def _skip(self, slot_id: Hashable) -> Result | None:
        # ldirectord: a real in maintenance is not checked at all (_check_real_for_maintenance)
        if self.book.is_held(slot_id):  # type: ignore[arg-type]
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

    async def _observe(self, slot_id: Hashable, result: Result) -> None:
        slot = self.book.by_id.get(slot_id)  # type: ignore[call-overload]
        if slot is None:
            return  # a result from a probe that a reload removed
        key = slot.key
        new, transition = hl.observe(
            slot.health, result, failurecount=key.failurecount, rise=key.rise, now=self._now()
        )
        slot.health = new
        if new.local_errors == 1:  # healthd's own failure: once per streak, never a transition
            self._local_error(slot, result)
        if self.plugins.want_results:
            for virtual, real in slot.members:
                await self.plugins.on_result(virtual, real, result)
        if transition is None:
            return
        self.kernel.mark(slot.services)
        for virtual, real in slot.members:
            await self._transition(virtual, real, new, transition, result)

    def _local_error(self, slot: Slot, result: Result) -> None:
        virtual, real = slot.members[0]
        log.warning(
            logs.CHECK_LOCAL_ERROR,
            virtual=virtual.name,
            real=real.endpoint,
            check=probes.describe(virtual),
            detail=result.detail,
            up=slot.health.up,
        )

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
        self.kernel.changed_since_resync = True
        await self.plugins.on_transition(virtual, real, up, result, transition.reason)

    # --- maintenance ------------------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.checkinterval)
            await self._scan_maintenance(reconcile=True)

    async def _scan_maintenance(self, *, reconcile: bool) -> None:
        """Re-read maintenancedir; hold newly listed reals down, let the others go.

        With `reconcile`, the changed reals' virtuals are marked for the next tick (marked
        last, so the tick sees the new forced set); without, the caller plans everything.
        """
        directory = self.config.maintenancedir
        names = maintenance.scan(directory) if directory else set()
        hostnames = await self._resolve(names) if names else {}
        book = self.book
        forced = self.topology.forced_down(names, hostnames) & book.by_key.keys()
        before = set(book.forced)
        now = self._now()
        for key in forced - before:
            transition = book.hold(key, "maintenance", now)
            slot = book.by_key[key]
            for virtual, real in slot.members:
                log.info(
                    logs.REAL_MAINTENANCE, virtual=virtual.name, real=real.endpoint, state="on"
                )
                if transition is not None:
                    await self._transition(virtual, real, slot.health, transition, None)
        for key in before - forced:
            book.let_go(key)
            for virtual, real in book.by_key[key].members:
                log.info(
                    logs.REAL_MAINTENANCE, virtual=virtual.name, real=real.endpoint, state="off"
                )
        if reconcile:
            for key in forced ^ before:
                self.kernel.mark(book.by_key[key].services)

    async def _resolve(self, names: set[str]) -> Mapping[Any, str]:
        """Return reverse names of the reals, looked up once each (only when names exist)."""
        addresses = self.topology.addresses()
        plain = {n.rsplit(":", 1)[0].strip("[]") for n in names}
        if plain <= {str(a) for a in addresses}:
            return {}  # every name is an address form: no resolver needed
        for address in addresses - self._hostnames.keys():
            self._hostnames[address] = await asyncio.to_thread(maintenance.lookup_hostname, address)
        return {a: n for a, n in self._hostnames.items() if n}

    # --- plumbing ---------------------------------------------------------------------

    def _schedule(self) -> None:
        jobs = self._jobs()
        self.scheduler.sync(jobs)
        self.progress.schedule(jobs.values())

    def _jobs(self) -> dict[Hashable, Job]:
        jobs: dict[Hashable, Job] = {}
        for slot in self.book.by_key.values():
            job = self._job(slot)
            if job is not None:
                jobs[slot.id] = job
        return jobs

    def _job(self, slot: Slot) -> Job | None:
        virtual, real = slot.members[0]
        slot.probe = slot.probe or probes.build(virtual, real, self._load)
        if slot.probe is None:
            return None  # checktype on / off: never checked
        names = ",".join(dict.fromkeys(v.name for v, _ in slot.members))
        labels = {"virtual": names, "real": real.endpoint, "check": probes.describe(virtual)}
        return Job(slot.probe, slot.key.checkinterval, labels)

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
        await self.plugins.on_state(state)

    # --- read access for the status view ---------------------------------------------

    @property
    def health(self) -> Mapping[hl.CheckKey, hl.Health]:
        return self.book

    @property
    def forced(self) -> frozenset[hl.CheckKey]:
        return frozenset(self.book.forced)

    @property
    def table(self) -> Table:
        return self.kernel.table()

    @property
    def slots(self) -> Mapping[hl.CheckKey, Slot]:
        """Every health slot by check key (the metrics read probes and check intervals)."""
        return self.book.by_key

    @property
    def kernel_record(self) -> Mapping[ServiceKey, ServiceEntry]:
        """The table as last known, without a copy (read at every scrape)."""
        return self.kernel.record

    @property
    def driver(self) -> IPVSDriver:
        """The driver the kernel side talks through (runtime control reads its counters)."""
        return self.kernel.driver

    @property
    def fallback_active(self) -> Mapping[str, bool]:
        return self.kernel.fallback
