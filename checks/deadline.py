"""Coarse timeouts for checks run by the thousand: one event-loop timer per tick, not per check.

`within(seconds)` means what `asyncio.timeout(seconds)` means: the block's task is cancelled
when the time is up and TimeoutError leaves the block. It differs in how the time is kept.
asyncio.timeout arms a loop timer for every block and cancels it on the way out; with
thousands of checks a second, under uvloop, that cost as much as the rest of an HTTP check's
Python code. Here a block is filed in its loop's wheel of TICK-wide slots instead, and one
timer, armed only while some block is filed, fires at the end of the earliest slot and expires
every block whose slot has come. A block therefore ends between its deadline and one TICK
later: never sooner, and never late by more than a tick. The expiry itself goes through the
block's own asyncio.Timeout, so cancellation and `uncancel` behave exactly as asyncio's do.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from types import TracebackType
from typing import Final

TICK: Final = 0.05  # seconds: how late a block may end past its deadline


class _Wheel:
    """The filed blocks of one event loop, by slot, and the one timer that expires them."""

    __slots__ = ("__weakref__", "_armed", "_handle", "_loop", "_slots")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[int, set[asyncio.Timeout]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._armed = 0  # the slot the timer fires for

    def file(self, block: asyncio.Timeout, when: float) -> int:
        """File `block` to expire at loop time `when` (rounded up to a slot); return the slot."""
        slot = math.ceil(when / TICK)
        members = self._slots.get(slot)
        if members is None:
            members = self._slots[slot] = set()
        members.add(block)
        if self._handle is None or slot < self._armed:
            self._arm(slot)
        return slot

    def drop(self, block: asyncio.Timeout, slot: int) -> None:
        """Take `block` out of the wheel (its block ended); a no-op if it already expired."""
        members = self._slots.get(slot)
        if members is not None:
            members.discard(block)
            if not members:
                del self._slots[slot]

    def __len__(self) -> int:
        return sum(len(members) for members in self._slots.values())

    def _arm(self, slot: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = slot
        self._handle = self._loop.call_at(slot * TICK, self._fire)

    def _fire(self) -> None:
        self._handle = None
        now = self._loop.time()
        # a loop may run a timer a hair early: the slot it was armed for is due regardless
        due = max(self._armed, math.floor(now / TICK))
        for slot in [slot for slot in self._slots if slot <= due]:
            for block in self._slots.pop(slot):
                if block.when() is None:  # still running: no one else set its deadline
                    block.reschedule(now)  # asyncio's own expiry: cancel, then TimeoutError
        if self._slots:
            self._arm(min(self._slots))


_wheels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Wheel]
_wheels = weakref.WeakKeyDictionary()


def _wheel(loop: asyncio.AbstractEventLoop) -> _Wheel:
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = _Wheel(loop)
    return wheel


def pending(loop: asyncio.AbstractEventLoop) -> int:
    """Return how many blocks are filed in `loop`'s wheel (for tests and status)."""
    wheel = _wheels.get(loop)
    return 0 if wheel is None else len(wheel)


class within:
    """`async with within(seconds):` - asyncio.timeout's meaning on a coarse, shared timer."""

    __slots__ = ("_block", "_seconds", "_slot", "_wheel")

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._block = asyncio.timeout(None)
        self._wheel: _Wheel | None = None
        self._slot = 0

    async def __aenter__(self) -> asyncio.Timeout:
        await self._block.__aenter__()
        if self._seconds is not None:
            loop = asyncio.get_running_loop()
            self._wheel = _wheel(loop)
            self._slot = self._wheel.file(self._block, loop.time() + self._seconds)
        return self._block

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._wheel is not None:
            self._wheel.drop(self._block, self._slot)
        await self._block.__aexit__(exc_type, exc, tb)
