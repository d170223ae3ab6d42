"""Time as the engine and scheduler see it: a Clock protocol, the system clock, a fake clock.

FakeClock gives tests virtual time (trio's MockClock idea): sleepers wake only when a test
calls advance(), so no test waits in real time. Nothing here touches IPVS or checks.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """A monotonic time source with a matching sleep."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: time.monotonic() and asyncio.sleep()."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class FakeClock:
    """Virtual time for tests: sleep() blocks until advance() moves time past its deadline."""

    def __init__(self, start: float = 1000.0, settle_rounds: int = 50) -> None:
        self._now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._settle_rounds = settle_rounds

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._now + seconds, next(self._seq), fut))
        await fut

    @property
    def sleepers(self) -> int:
        """Return how many sleeps are pending (cancelled ones excluded)."""
        return sum(1 for _, _, fut in self._timers if not fut.done())

    async def settle(self) -> None:
        """Let every runnable task run until it blocks again (bounded number of loop turns)."""
        for _ in range(self._settle_rounds):
            await asyncio.sleep(0)

    async def jump(self, seconds: float) -> None:
        """Leap forward at once (a suspended VM, a stalled process): every sleeper already
        due wakes in the same turn, once, as a real loop does after a stall."""
        self._now += seconds
        while self._timers and self._timers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._timers)
            if not fut.done():
                fut.set_result(None)
        await self.settle()

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper in deadline order and letting it run."""
        target = self._now + seconds
        await self.settle()
        while self._timers and self._timers[0][0] <= target:
            # every sleeper due at the same instant wakes in the same turn, as on a real loop
            deadline = self._timers[0][0]
            self._now = max(self._now, deadline)
            while self._timers and self._timers[0][0] == deadline:
                _, _, fut = heapq.heappop(self._timers)
                if not fut.done():
                    fut.set_result(None)
            await self.settle()
        self._now = target
        await self.settle()
