"""systemd's watchdog, fed only while the engine makes progress, not merely while the loop runs.

The engine bumps plain counters as it works (Progress: check results folded, reconciles
entered and finished); once per ping interval the daemon's watchdog task reads them here and
pings only if checks finished and no reconcile hung within the bound. A stuck engine thus
stops the pings, and systemd restarts the daemon after WatchdogSec. Nothing here runs per check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from healthd import logs
from healthd.sdnotify import Notifier

if TYPE_CHECKING:
    from healthd.scheduler import Job

log = logs.get_logger("healthd.watchdog")


@dataclass(slots=True)
class Progress:
    """Counters the engine keeps for the watchdog; bumped in place, read once per ping."""

    results: int = 0  # check results folded into health
    probes: int = -1  # probes scheduled; -1 until the first schedule (start-up)
    period: float = 0.0  # the longest checkinterval + timeout + grace among them, seconds
    reconciling: int = 0  # reconciles entered (or waiting for the lock) and not finished
    reconciles: int = 0  # reconciles finished

    def schedule(self, jobs: Collection[Job]) -> None:
        """Note the probes now scheduled and the longest time one of them may take a round."""
        from healthd.scheduler import GRACE

        self.probes = len(jobs)
        longest = max((job.interval + job.probe.timeout for job in jobs), default=0.0)
        self.period = longest + GRACE if jobs else 0.0


class Watch:
    """Judges, at each ping, whether the counters moved recently enough."""

    def __init__(self, progress: Progress, interval: float, now: float) -> None:
        self.progress = progress
        self.interval = interval
        self.reason: str | None = None  # why the pings stopped, while they are stopped
        self._results = progress.results
        self._reconciles = progress.reconciles
        self._checked_at = now  # when a check result last came in (or none was due)
        self._synced_at = now  # when the reconciler was last idle or finished one

    @property
    def bound(self) -> float:
        """Return how long progress may pause: 2 pings, or 2 rounds of the slowest check."""
        return max(2 * self.interval, 2 * self.progress.period)

    def stuck(self, now: float) -> tuple[str, float] | None:
        """Return (reason, seconds without progress) if the engine looks stuck, else None."""
        p = self.progress
        if p.probes < 0:
            # start-up (first dump and reconcile): systemd arms the watchdog only after
            # READY=1, which comes after it; TimeoutStartSec bounds this part
            self._checked_at = self._synced_at = now
            return None
        if p.results != self._results or p.probes == 0:
            self._results, self._checked_at = p.results, now
        if p.reconciles != self._reconciles or p.reconciling == 0:
            self._reconciles, self._synced_at = p.reconciles, now
        bound = self.bound
        if now - self._synced_at > bound:
            return "reconcile_stuck", now - self._synced_at
        if now - self._checked_at > bound:
            return "no_check_results", now - self._checked_at
        return None

    def tick(self, now: float) -> bool:
        """Return whether to ping now; log once when progress stops and once when it resumes."""
        stuck = self.stuck(now)
        if stuck is None:
            if self.reason is not None:
                log.warning(logs.WATCHDOG_RESUMED, stalled=self.reason)
                self.reason = None
            return True
        if self.reason is None:
            self.reason, idle = stuck
            # systemd restarts the daemon WatchdogSec after the last ping
            log.error(
                logs.WATCHDOG_STALLED,
                reason=self.reason,
                idle_s=round(idle, 1),
                bound_s=round(self.bound, 1),
                action="watchdog pings stopped",
            )
        return False


async def run(notifier: Notifier, watch: Watch | None, interval: float) -> None:
    """Ping every interval while `watch` sees progress (always, without one)."""
    loop = asyncio.get_running_loop()
    while True:
        before = watch.reason if watch is not None else None
        if watch is None or watch.tick(loop.time()):
            notifier.watchdog()
        if watch is not None and watch.reason != before:  # `systemctl status` says it too
            notifier.status(f"stalled: {watch.reason}" if watch.reason else "running")
        await asyncio.sleep(interval)
