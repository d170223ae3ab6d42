"""Runs probes: one task per check key, a jittered first run, then one run per interval.

Bounds the checks in flight with one FIFO Limiter, bounds each run with a coarse timeout,
turns a crashing check into Result(DOWN, "local_error") and hands every result to a sink.
Judges nothing: health and the IPVS table are the engine's business.

Under overload (a slow or busy machine: more checks due than the CPU can run) the bound
shrinks so that the checks running still finish well within their timeouts, and the others
wait their turn: the check period stretches instead of healthy reals timing out. The signal
is how much of its timeout a passing check used (see Governor).
"""

from __future__ import annotations

import asyncio
import collections
import random
import resource
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Final

from checks.base import Result
from checks.deadline import within
from healthd import logs
from healthd.clock import Clock, SystemClock
from healthd.probes import Probe

log = logs.get_logger("healthd.scheduler")

GRACE: Final = 1.0  # seconds a check may overrun its own timeout before the scheduler cuts it
DEFAULT_MAX_IN_FLIGHT: Final = 256
SLOW: Final = 0.5  # passing checks using this share of their timeout: too many in flight
QUICK: Final = 0.2  # ...and this little: room for more at once
WEIGHT: Final = 0.05  # of one passing check in the running average of that share
FLOOR: Final = 4  # the fewest checks kept in flight, however slow they are
COOL: Final = 1.0  # seconds between two cuts (the checks already running finish slow too)

Sink = Callable[[Hashable, Result], None]
Skip = Callable[[Hashable], Result | None]


@dataclass(frozen=True, slots=True)
class Job:
    """What to run for one check key, how often, and the names its log lines carry."""

    probe: Probe
    interval: float
    labels: Mapping[str, str] = field(default_factory=dict)  # virtual, real, check


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def raise_nofile() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (thousands of reals need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # kernel: an unlimited hard limit still cannot exceed fs.nr_open
    new = hard if hard != resource.RLIM_INFINITY else max(soft, _nr_open())
    if soft >= new:
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    except (ValueError, OSError) as exc:
        log.warning(logs.RLIMIT_FAILED, soft=soft, hard=hard, detail=str(exc))
        return soft, hard
    log.debug(logs.RLIMIT_RAISED, soft=new, hard=hard)
    return new, hard


class Limiter:
    """A FIFO bound on checks in flight whose release is O(1), whatever the queue's length.

    asyncio.Semaphore (3.11) scans its waiters from the head on every release, past those
    already woken but not yet run; with thousands of probers queued behind 256 slots (an
    overloaded core) that scan took 9.5 % of healthd's CPU in a profile. Here a release hands
    its slot straight to the first waiter still waiting; cancelled waiters are dropped as
    they reach the head.
    """

    def __init__(self, slots: int) -> None:
        self._size = max(1, slots)
        self._free = self._size  # below 0 after a shrink: releases absorb the excess
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def free(self) -> int:
        return self._free

    @property
    def size(self) -> int:
        return self._size

    @property
    def waiting(self) -> bool:
        return bool(self._waiters)

    def resize(self, slots: int) -> None:
        """Change the bound; a smaller one takes effect as running checks end."""
        slots = max(1, slots)
        self._free += slots - self._size
        self._size = slots
        while self._free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._free -= 1
                waiter.set_result(None)

    async def acquire(self) -> None:
        """Take a slot, waiting in arrival order when none is free."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled before running: pass it on
            raise

    def release(self) -> None:
        """Give the slot to the first waiter still waiting, else make it free."""
        if self._free < 0:
            self._free += 1  # the bound shrank: this slot is gone
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class Governor:
    """Sizes a Limiter from how long passing checks take: fewer at once when they run slow.

    With hundreds of checks in flight on a saturated core each takes longer than its
    timeout, all fail together and nothing ever passes. A passing check's duration, as a
    share of its timeout, is averaged; above SLOW a quarter comes off the bound (at most one
    cut per COOL seconds), below QUICK each passing check adds a slot while checks are
    queued, up to max_in_flight (what an idle machine runs with). Failed checks are left out:
    dead reals that time out say nothing about the machine. Slowness the bound does not
    cause (a slow real) shrinks it no further than FLOOR.
    """

    def __init__(self, limiter: Limiter, ceiling: int, clock: Clock) -> None:
        self._limiter = limiter
        self._ceiling = max(1, ceiling)
        self._clock = clock
        self._size = float(limiter.size)
        self._share = 0.0
        self._cut_at = float("-inf")

    def passed(self, share: float) -> None:
        """Note that a check passed using `share` of its timeout; resize when needed."""
        self._share += WEIGHT * (share - self._share)
        if self._share > SLOW:
            now = self._clock.monotonic()
            if now - self._cut_at < COOL or self._size <= FLOOR:
                return
            self._cut_at = now
            self._size = max(float(FLOOR), self._size * 0.75)
        elif self._share < QUICK and self._limiter.waiting and self._size < self._ceiling:
            self._size = min(float(self._ceiling), self._size + 1.0)
        else:
            return
        if int(self._size) != self._limiter.size:
            self._limiter.resize(int(self._size))
            log.debug(
                logs.SCHEDULER_RESIZED, in_flight=int(self._size), share=round(self._share, 2)
            )


class Scheduler:
    """Keeps one prober task per check key and feeds each result to `sink`."""

    def __init__(
        self,
        sink: Sink,
        *,
        clock: Clock | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        jitter: Callable[[], float] = random.random,
        skip: Skip | None = None,
        grace: float = GRACE,
    ) -> None:
        self._sink = sink
        self._clock = clock or SystemClock()
        self._limit = Limiter(max_in_flight)
        self._governor = Governor(self._limit, max_in_flight, self._clock)
        self._jitter = jitter
        self._skip = skip
        self._grace = grace
        self._jobs: dict[Hashable, Job] = {}
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self.failed: asyncio.Future[None] | None = None
        self.runs = 0  # check runs started, for status and tests

    @property
    def keys(self) -> frozenset[Hashable]:
        return frozenset(self._tasks)

    def sync(self, jobs: Mapping[Hashable, Job]) -> None:
        """Make the running probers match `jobs`: start new keys, stop gone ones, update others.

        A key that stays keeps its task and timing; its new Job (probe, interval) applies from
        its next run. A key whose probe object changed restarts at its next run.
        """
        if self.failed is None:
            self.failed = asyncio.get_running_loop().create_future()
        for key in list(self._tasks):
            if key not in jobs:
                self._tasks.pop(key).cancel()
                self._jobs.pop(key, None)
        for key, job in jobs.items():
            self._jobs[key] = job
            if key not in self._tasks:
                task = asyncio.create_task(self._prober(key), name=f"probe {key}")
                task.add_done_callback(self._task_done)
                self._tasks[key] = task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        # a prober only ends by cancellation; anything else is a bug that must surface
        if task.cancelled() or self.failed is None or self.failed.done():
            return
        exc = task.exception()
        if exc is not None:
            self.failed.set_exception(exc)

    async def aclose(self) -> None:
        """Cancel every prober and wait for them to end."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._jobs.clear()
        for task in tasks:
            task.cancel()
        # a prober that died of a bug has already reported it through `failed`
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _prober(self, key: Hashable) -> None:
        job = self._jobs[key]
        bound = log.bind(**job.labels)
        # a uniform first delay in [0, interval) spreads thousands of reals over the interval
        await self._clock.sleep(self._jitter() * job.interval)
        while True:
            job = self._jobs[key]
            started = self._clock.monotonic()
            result = self._skip(key) if self._skip is not None else None
            if result is None:
                result = await self._run(job, bound)
            self._sink(key, result)
            # the next run starts one interval after this one started, or at once when the
            # check took longer (never two runs of one key at a time; overload stretches it)
            spent = self._clock.monotonic() - started
            await self._clock.sleep(max(job.interval - spent, 0.0))

    async def _run(self, job: Job, bound: logs.Logger) -> Result:
        """Run the probe once under the in-flight bound and the timeout; never raises."""
        await self._limit.acquire()
        try:
            self.runs += 1
            start = self._clock.monotonic()
            result = await run_once(job.probe, bound, clock=self._clock, grace=self._grace)
            if result.up:
                took = self._clock.monotonic() - start
                self._governor.passed(took / max(job.probe.timeout, 1e-3))
            return result
        finally:
            self._limit.release()


async def run_once(
    probe: Probe, bound: logs.Logger, *, clock: Clock | None = None, grace: float = GRACE
) -> Result:
    """Run a probe once, cut at its timeout + grace; a crash is Result(DOWN, local_error).

    A crash is healthd's own failure, not the real's: health.observe never counts it.
    """
    clock = clock or SystemClock()
    start = clock.monotonic()
    limit = probe.timeout + grace
    try:
        async with within(limit):
            result = await probe.run()
    except TimeoutError:
        result = Result.down("timeout", f"no result within {limit:g}s", clock.monotonic() - start)
    except Exception as exc:  # noqa: BLE001 - isolation boundary, logged with traceback
        bound.exception(logs.CHECK_CRASHED, reason="local_error")
        detail = f"check crashed: {type(exc).__name__}: {exc}"
        result = Result.down("local_error", detail, clock.monotonic() - start)
    bound.debug(
        logs.CHECK_RESULT,
        status=str(result.status),
        reason=result.reason,
        detail=result.detail,
        elapsed_ms=round(result.elapsed * 1000, 1),
    )
    return result
