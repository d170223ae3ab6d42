"""The scheduler on virtual time: jitter, interval, no overlap, in-flight bound, timeouts."""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass, field

import pytest
from structlog.testing import capture_logs

from checks.base import Result
from healthd import logs
from healthd.clock import FakeClock, SystemClock
from healthd.scheduler import (
    COOL,
    FLOOR,
    Governor,
    Job,
    Limiter,
    Scheduler,
    raise_nofile,
    run_once,
)


@dataclass
class TimedProbe:
    """A probe that takes `duration` of virtual time and records when it started."""

    clock: FakeClock
    duration: float = 0.0
    kind: str = "stub"
    timeout: float = 100.0
    starts: list[float] = field(default_factory=list)
    running: int = 0
    peak: int = 0

    async def run(self) -> Result:
        self.starts.append(self.clock.monotonic())
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.clock.sleep(self.duration)
        finally:
            self.running -= 1
        return Result.ok()


class Shared:
    """Counts how many of several probes run at the same time."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0


@dataclass
class CountingProbe:
    shared: Shared
    clock: FakeClock
    kind: str = "stub"
    timeout: float = 100.0

    async def run(self) -> Result:
        self.shared.running += 1
        self.shared.peak = max(self.shared.peak, self.shared.running)
        await self.clock.sleep(1.0)
        self.shared.running -= 1
        return Result.ok()


def collector():
    got: list[tuple[object, Result]] = []
    return got, lambda key, result: got.append((key, result))


async def test_first_run_is_jittered_within_the_interval_then_periodic():
    clock = FakeClock(start=0.0)
    probe = TimedProbe(clock)
    got, sink = collector()
    sched = Scheduler(sink, clock=clock, jitter=lambda: 0.25)
    sched.sync({"a": Job(probe, 10.0)})
    await clock.advance(2.4)
    assert probe.starts == []
    await clock.advance(0.1)
    assert probe.starts == [2.5]
    await clock.advance(30)
    assert probe.starts == [2.5, 12.5, 22.5, 32.5]
    assert [key for key, _ in got] == ["a"] * 4
    await sched.aclose()


async def test_default_jitter_stays_in_zero_to_interval():
    clock = FakeClock(start=0.0)
    probes = [TimedProbe(clock) for _ in range(50)]
    sched = Scheduler(lambda k, r: None, clock=clock)
    sched.sync({i: Job(p, 10.0) for i, p in enumerate(probes)})
    await clock.advance(10.0)  # jitter < 1: every first run is due by then
    firsts = [p.starts[0] for p in probes]
    assert all(0.0 <= t < 10.0 for t in firsts)
    assert len(set(firsts)) > 1  # spread, not all at once
    await sched.aclose()


async def test_a_slow_check_delays_the_next_run_without_overlap():
    clock = FakeClock(start=0.0)
    probe = TimedProbe(clock, duration=15.0)
    sched = Scheduler(lambda k, r: None, clock=clock, jitter=lambda: 0.0)
    sched.sync({"a": Job(probe, 10.0)})
    await clock.advance(46)
    assert probe.starts == [0.0, 15.0, 30.0, 45.0]  # back to back, never two at once
    assert probe.peak == 1
    await sched.aclose()


async def test_checks_in_flight_are_bounded():
    clock = FakeClock(start=0.0)
    shared = Shared()
    got, sink = collector()
    sched = Scheduler(sink, clock=clock, jitter=lambda: 0.0, max_in_flight=3)
    sched.sync({i: Job(CountingProbe(shared, clock), 10.0) for i in range(10)})
    await clock.advance(5)
    assert shared.peak == 3
    assert len(got) == 10  # all ran, three at a time, stretched rather than dropped
    await sched.aclose()


async def test_timeout_turns_into_a_down_result():
    class Hanging:
        kind = "stub"
        timeout = 0.01

        async def run(self) -> Result:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    result = await run_once(Hanging(), logs.get_logger(), clock=SystemClock(), grace=0.0)
    assert result.reason == "timeout"
    assert not result.up


async def test_a_crash_is_local_error_with_traceback_logged():
    class Buggy:
        kind = "stub"
        timeout = 1.0

        async def run(self) -> Result:
            return {}["missing"]  # type: ignore[no-any-return]

    with capture_logs() as captured:
        result = await run_once(Buggy(), logs.get_logger().bind(real="198.51.100.1:80"))
    assert result.reason == "local_error"
    assert result.detail.startswith("check crashed: KeyError")
    crashed = [e for e in captured if e["event"] == logs.CHECK_CRASHED]
    assert crashed[0]["real"] == "198.51.100.1:80"
    assert crashed[0]["exc_info"] is True
    debug = [e for e in captured if e["event"] == logs.CHECK_RESULT]
    assert debug[0]["log_level"] == "debug"


async def test_skip_reports_instead_of_running():
    clock = FakeClock(start=0.0)
    probe = TimedProbe(clock)
    got, sink = collector()
    skipped = Result.down("maintenance")
    sched = Scheduler(sink, clock=clock, jitter=lambda: 0.0, skip=lambda key: skipped)
    sched.sync({"a": Job(probe, 10.0)})
    await clock.advance(25)
    assert probe.starts == []
    assert [r for _, r in got] == [skipped] * 3
    await sched.aclose()


async def test_sync_starts_new_keys_stops_gone_ones_and_keeps_the_rest():
    clock = FakeClock(start=0.0)
    a, b, c = TimedProbe(clock), TimedProbe(clock), TimedProbe(clock)
    sched = Scheduler(lambda k, r: None, clock=clock, jitter=lambda: 0.0)
    sched.sync({"a": Job(a, 10.0), "b": Job(b, 10.0)})
    await clock.advance(5)
    sched.sync({"a": Job(a, 20.0), "c": Job(c, 10.0)})  # a: new interval from its next run
    await clock.advance(30)
    assert sched.keys == frozenset({"a", "c"})
    assert b.starts == [0.0]
    assert a.starts == [0.0, 10.0, 30.0]
    assert c.starts == [5.0, 15.0, 25.0, 35.0]
    await sched.aclose()
    assert sched.keys == frozenset()
    await clock.advance(30)
    assert len(c.starts) == 4


async def test_a_prober_that_dies_of_a_bug_is_reported():
    clock = FakeClock(start=0.0)

    def broken_sink(key, result):
        raise TypeError("engine bug")

    sched = Scheduler(broken_sink, clock=clock, jitter=lambda: 0.0)
    sched.sync({"a": Job(TimedProbe(clock), 10.0)})
    await clock.settle()
    assert sched.failed is not None
    with pytest.raises(TypeError, match="engine bug"):
        sched.failed.result()
    await sched.aclose()


def test_raise_nofile_lifts_the_soft_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        new_soft, new_hard = raise_nofile()
        assert new_hard == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == new_soft
        assert new_soft > 256 or hard <= 256
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_fake_clock_wakes_sleepers_in_deadline_order():
    clock = FakeClock(start=0.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, delay: float) -> None:
        await clock.sleep(delay)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(n, d)) for n, d in (("b", 2.0), ("a", 1.0), ("c", 3))]
    await clock.advance(2.5)
    assert woke == [("a", 1.0), ("b", 2.0)]
    assert clock.sleepers == 1
    assert clock.monotonic() == 2.5
    await clock.advance(1)
    assert woke[-1] == ("c", 3.0)
    await asyncio.gather(*tasks)


async def test_system_clock_sleeps_for_real():
    clock = SystemClock()
    before = clock.monotonic()
    await clock.sleep(0.01)
    assert clock.monotonic() > before


async def _hold(limit: Limiter, name: str, order: list[str], gate: asyncio.Event) -> None:
    await limit.acquire()
    order.append(name)
    try:
        await gate.wait()
    finally:
        limit.release()


async def test_limiter_bounds_and_serves_waiters_in_arrival_order():
    limit, gate = Limiter(2), asyncio.Event()
    order: list[str] = []
    tasks = [asyncio.create_task(_hold(limit, str(i), order, gate)) for i in range(5)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert order == ["0", "1"]  # two slots, the rest wait
    gate.set()
    await asyncio.gather(*tasks)
    assert order == ["0", "1", "2", "3", "4"]
    assert limit.free == 2  # every slot came back


async def test_limiter_cancelled_waiters_lose_no_slot():
    limit, gate = Limiter(1), asyncio.Event()
    order: list[str] = []
    first = asyncio.create_task(_hold(limit, "first", order, gate))
    waiting = [asyncio.create_task(_hold(limit, f"w{i}", order, gate)) for i in range(3)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # cancelled while queued
    await asyncio.sleep(0)
    gate.set()
    await asyncio.sleep(0)  # first releases: its slot is handed to w1 (w0 is skipped)
    waiting[1].cancel()  # handed a slot, cancelled before it ran: it must pass it on
    await asyncio.gather(first, *waiting, return_exceptions=True)
    assert order == ["first", "w2"]
    assert limit.free == 1


async def test_limiter_shrinks_as_checks_end_and_grows_at_once():
    limit, gate = Limiter(3), asyncio.Event()
    order: list[str] = []
    held = [asyncio.create_task(_hold(limit, str(i), order, gate)) for i in range(3)]
    queued = [asyncio.create_task(_hold(limit, f"q{i}", order, gate)) for i in range(3)]
    await asyncio.sleep(0)
    limit.resize(1)  # three running: the next two releases give their slots up
    assert (limit.size, limit.free) == (1, -2)
    limit.resize(2)
    assert limit.free == -1
    limit.resize(4)  # three running, room for one more: the first waiter runs at once
    await asyncio.sleep(0)
    assert order == ["0", "1", "2", "q0"]
    assert limit.waiting
    gate.set()
    await asyncio.gather(*held, *queued)
    assert order[-1] == "q2"
    assert (limit.size, limit.free) == (4, 4)


class Ticking:
    """A clock the governor reads: it moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - never slept on
        self.now += seconds


def test_governor_cuts_the_bound_when_passing_checks_run_slow_at_most_once_per_cool_down():
    clock, limit = Ticking(), Limiter(256)
    governor = Governor(limit, 256, clock)  # type: ignore[arg-type]
    for _ in range(20):
        governor.passed(0.4)  # slowish, but the average stays under SLOW
    assert limit.size == 256
    while limit.size == 256:
        governor.passed(0.9)
    assert limit.size == 192  # a quarter off
    for _ in range(50):
        governor.passed(0.9)  # the checks already running: no second cut this soon
    assert limit.size == 192
    for _ in range(40):
        clock.now += COOL
        governor.passed(0.9)
    assert limit.size == FLOOR  # never below the floor


async def test_governor_grows_the_bound_back_only_while_checks_wait():
    clock, limit = Ticking(), Limiter(16)
    governor = Governor(limit, 16, clock)  # type: ignore[arg-type]
    while limit.size == 16:
        governor.passed(1.0)
    assert limit.size == 12
    for _ in range(200):
        governor.passed(0.0)  # quick again, but nothing queued: no reason to grow
    assert limit.size == 12
    for _ in range(12):
        await limit.acquire()
    queued = [asyncio.create_task(limit.acquire()) for _ in range(10)]
    await asyncio.sleep(0)
    governor.passed(0.0)
    await asyncio.sleep(0)
    assert limit.size == 13
    assert sum(task.done() for task in queued) == 1  # the first waiter got the new slot
    for _ in range(100):
        governor.passed(0.0)
    await asyncio.sleep(0)
    assert limit.size == 16  # never above max_in_flight
    assert sum(task.done() for task in queued) == 4
    for task in queued:
        task.cancel()


async def test_slow_passing_checks_shrink_the_scheduler_bound():
    """Checks that pass using most of their timeout get fewer running at once."""
    clock, shared = FakeClock(start=0.0), Shared()
    probes = {i: SlowCountingProbe(shared, clock) for i in range(40)}
    sched = Scheduler(lambda key, result: None, clock=clock, jitter=lambda: 0.0, max_in_flight=32)
    sched.sync({i: Job(p, 1.0) for i, p in probes.items()})
    await clock.advance(0.5)
    assert shared.peak == 32  # at first the whole bound runs
    await clock.advance(60)
    shared.peak = 0
    await clock.advance(10)
    assert 1 <= shared.peak <= FLOOR
    await sched.aclose()


@dataclass
class SlowCountingProbe(CountingProbe):
    timeout: float = 1.5  # each run takes 1 s: two thirds of its timeout
