"""What the engine does not keep but operators want: per-real check statistics, recent
transitions, the achieved check rate and the event loop's lag.

A listener of the engine (on_result, on_transition, on_reconcile, on_state) and a plugin
with a one-second sampler (`run`). The per-result work is a few integer updates in place:
the metrics are rendered from these and from the engine's state at scrape time
(healthd.web.metrics), never updated metric by metric on the check path.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from healthd.plugins import Plugin, Reconciled

if TYPE_CHECKING:
    from checks.base import Result
    from healthd.model import Real, Virtual

# check duration histogram bounds, seconds (a check's timeout is 5 s by default)
BOUNDS: Final = (0.001, 0.01, 0.1, 0.5, 1.0, 5.0)
WINDOW: Final = 10  # samples (seconds) the achieved rate and the lag are taken over
RECENT: Final = 50  # transitions kept for the status page


@dataclass(slots=True)
class RealStats:
    """One (virtual, real) pair's check statistics since the daemon started."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))
    seconds: float = 0.0
    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    ups: int = 0  # transitions to up
    downs: int = 0  # transitions to down

    def observe(self, result: Result) -> None:
        self.buckets[bisect_left(BOUNDS, result.elapsed)] += 1
        self.seconds += result.elapsed
        self.count += 1
        reason = result.reason
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass(frozen=True, slots=True)
class Change:
    """One transition, for the status page."""

    at: float  # wall clock
    virtual: str
    real: str
    up: bool
    reason: str


@dataclass(slots=True)
class Reconciles:
    """Counters of reconciles (full and incremental) and the last full one's duration."""

    full: int = 0
    incremental: int = 0
    failed: int = 0
    drift: int = 0
    last_full_seconds: float = 0.0


class Stats(Plugin):
    """Engine listener keeping RealStats by (virtual, real) and the daemon-wide figures."""

    def __init__(
        self,
        progress: Callable[[], int] = lambda: 0,
        *,
        now: Callable[[], float] = time.time,
        interval: float = 1.0,
    ) -> None:
        self.by_pair: dict[tuple[int, int], RealStats] = {}
        self.by_name: dict[tuple[str, str], RealStats] = {}
        self.recent: deque[Change] = deque(maxlen=RECENT)
        self.reconciles = Reconciles()
        self.state = "starting"
        self.lag = 0.0  # the largest event-loop lag in the last WINDOW samples, seconds
        self.achieved = 0.0  # checks finished per second over the last WINDOW samples
        self._progress = progress
        self._now = now
        self._interval = interval
        self._lags: deque[float] = deque(maxlen=WINDOW)
        self._samples: deque[tuple[float, int]] = deque(maxlen=WINDOW + 1)

    def pair(self, virtual: Virtual, real: Real) -> RealStats:
        """Return the pair's stats, kept by name across reloads (made on first use)."""
        key = (id(virtual), id(real))
        stats = self.by_pair.get(key)
        if stats is None:
            name = (virtual.name, real.endpoint)
            stats = self.by_name.get(name) or RealStats()
            self.by_name[name] = self.by_pair[key] = stats
        return stats

    def forget(self, keep: set[tuple[str, str]]) -> None:
        """Drop the stats of pairs no longer configured (after a reload)."""
        self.by_name = {k: v for k, v in self.by_name.items() if k in keep}
        kept = set(map(id, self.by_name.values()))
        self.by_pair = {k: v for k, v in self.by_pair.items() if id(v) in kept}

    # --- listener -------------------------------------------------------------------

    async def on_result(self, virtual: Virtual, real: Real, result: Result) -> None:
        stats = self.by_pair.get((id(virtual), id(real))) or self.pair(virtual, real)
        stats.observe(result)

    async def on_transition(
        self, virtual: Virtual, real: Real, up: bool, result: Result | None, reason: str
    ) -> None:
        stats = self.pair(virtual, real)
        if up:
            stats.ups += 1
        else:
            stats.downs += 1
        self.recent.appendleft(Change(self._now(), virtual.name, real.endpoint, up, reason))

    async def on_reconcile(self, report: Reconciled) -> None:
        r = self.reconciles
        if report.full:
            r.full += 1
            r.last_full_seconds = report.seconds
        else:
            r.incremental += 1
        r.failed += report.failed
        r.drift += report.drift

    async def on_state(self, state: str) -> None:
        self.state = state

    # --- sampler --------------------------------------------------------------------

    async def run(self) -> None:
        """Once per interval: measure the loop's lag and the checks finished since."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self._interval)
            self.sample(loop.time() - start - self._interval, loop.time(), self._progress())

    def sample(self, lag: float, at: float, results: int) -> None:
        """Take one sample: a lag, and the engine's results counter at monotonic time `at`."""
        self._lags.append(max(lag, 0.0))
        self.lag = max(self._lags)
        self._samples.append((at, results))
        first_at, first = self._samples[0]
        if at > first_at:
            self.achieved = (results - first) / (at - first_at)
