"""checks.deadline.within: asyncio.timeout's meaning, kept by one coarse timer per loop."""

from __future__ import annotations

import asyncio

import pytest

from checks import deadline
from checks.deadline import TICK, _Wheel, within

SLACK = 2.0  # what a loaded machine may add to a wall-clock expiry; precision is tested below


async def _nested(outer: float, inner: float, blocks: list[asyncio.Timeout]) -> None:
    async with within(outer) as first, within(inner) as second:
        blocks += [first, second]
        await asyncio.sleep(10)


async def test_a_block_that_finishes_in_time_returns_its_value_and_leaves_nothing_filed() -> None:
    async with within(1.0) as block:
        await asyncio.sleep(0)
    assert not block.expired()
    assert deadline.pending(asyncio.get_running_loop()) == 0


async def test_an_overrunning_block_raises_timeout_no_sooner_than_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        async with within(0.12) as block:
            await asyncio.sleep(10)
    ended = loop.time() - started
    assert block.expired()
    # never early; how late is test_a_block_expires_at_the_end_of_its_slot's (no wall clock)
    assert 0.12 <= ended < 0.12 + SLACK
    assert deadline.pending(loop) == 0


async def test_many_blocks_expire_each_at_its_own_slot() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    ends: dict[float, float] = {}

    async def overrun(seconds: float) -> None:
        try:
            async with within(seconds):
                await asyncio.sleep(10)
        except TimeoutError:
            ends[seconds] = loop.time() - started

    await asyncio.gather(*(overrun(s) for s in (0.3, 0.1, 0.2, 0.1)))
    assert sorted(ends) == [0.1, 0.2, 0.3]
    for seconds, ended in ends.items():
        assert seconds <= ended < seconds + SLACK


async def test_a_cancel_from_outside_is_not_turned_into_a_timeout() -> None:
    entered = asyncio.Event()

    async def body() -> None:
        async with within(5.0):
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadline.pending(asyncio.get_running_loop()) == 0


async def test_an_inner_timeout_stays_inner_when_an_outer_one_is_further() -> None:
    blocks: list[asyncio.Timeout] = []
    with pytest.raises(TimeoutError):
        await _nested(5.0, 0.05, blocks)
    outer, inner = blocks
    assert inner.expired()
    assert not outer.expired()


async def test_an_exception_inside_passes_through_untouched() -> None:
    with pytest.raises(KeyError):
        async with within(1.0):
            raise KeyError("boom")
    assert deadline.pending(asyncio.get_running_loop()) == 0


async def test_none_never_expires() -> None:
    async with within(None) as block:
        await asyncio.sleep(TICK * 2)
    assert not block.expired()
    assert block.when() is None


async def test_a_deadline_moved_by_the_caller_is_the_callers() -> None:
    loop = asyncio.get_running_loop()
    async with within(0.05) as block:
        block.reschedule(loop.time() + 5)  # the wheel must not expire it at 0.05 s any more
        await asyncio.sleep(0.05 + TICK * 2)
    assert not block.expired()


async def test_the_wheel_timer_is_disarmed_once_empty_and_rearmed_for_an_earlier_slot() -> None:
    loop = asyncio.get_running_loop()
    # an earlier block filed after a later one must still expire on time
    with pytest.raises(TimeoutError):
        await _nested(2.0, 0.05, [])
    assert deadline.pending(loop) == 0
    with pytest.raises(TimeoutError):
        async with within(0.05):
            await asyncio.sleep(10)


class FakeLoop:
    """The two loop methods the wheel uses, on a clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, object]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: object) -> FakeLoop:
        self.timers.append((when, callback))
        return self

    def cancel(self) -> None:  # the wheel cancels its handle when it re-arms earlier
        self.timers.pop(0)


class FakeBlock:
    """The asyncio.Timeout methods the wheel calls, recording when it was expired."""

    def __init__(self) -> None:
        self.expired_at: float | None = None

    def when(self) -> float | None:
        return self.expired_at

    def reschedule(self, when: float) -> None:
        self.expired_at = when


def test_a_block_expires_at_the_end_of_its_slot_never_before_its_deadline() -> None:
    loop = FakeLoop()
    wheel = _Wheel(loop)  # type: ignore[arg-type]
    # filed latest first, so the wheel must re-arm its timer for each earlier slot
    blocks = {due: FakeBlock() for due in (0.3, 0.051, 0.05, 0.01)}
    for due, block in blocks.items():
        wheel.file(block, loop.now + due)  # type: ignore[arg-type]
    while loop.timers:
        when, fire = min(loop.timers, key=lambda timer: timer[0])
        loop.timers.remove((when, fire))
        loop.now = when
        fire()  # type: ignore[operator]
    for due, block in blocks.items():
        assert block.expired_at is not None
        late = block.expired_at - (100.0 + due)
        assert -1e-9 <= late <= TICK + 1e-9, (due, late)
    assert len(wheel) == 0
