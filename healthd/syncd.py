"""The kernel's IPVS connection sync daemon, started and stopped from syncd= (a plugin).

`syncd=master|backup|both` runs those threads on syncd_interface= with syncd_id=;
`syncd=no` stops any that runs; without syncd= healthd leaves them alone. The plan is
pure (`plan`); the plugin reads what runs (IPVS_CMD_GET_DAEMON), applies the difference
through the driver at start, after a reload and at each resync_interval (so a daemon
stopped by hand comes back), retries a refusal every RETRY seconds (logged
`syncd.apply_failed`, never fatal), and stops on exit the daemons it started. Its state
shows in `healthd status` and in /metrics (healthd_syncd_state).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from healthd import logs
from healthd.errors import DriverError
from healthd.ipvs.syncd_wire import ROLES, SyncDaemon
from healthd.plugins import Plugin

if TYPE_CHECKING:
    from healthd.model import Config, Syncd

log = logs.get_logger("healthd.syncd")

RETRY = 5.0  # seconds between attempts while the kernel refuses


@runtime_checkable
class SyncDriver(Protocol):
    """The sync daemon part of a driver (NetlinkDriver, FakeDriver)."""

    async def daemons(self) -> list[SyncDaemon]: ...

    async def start_daemon(self, daemon: SyncDaemon) -> None: ...

    async def stop_daemon(self, role: str) -> None: ...


def wanted(syncd: Syncd | None) -> list[SyncDaemon] | None:
    """Return the daemons syncd= asks for, or None when healthd leaves them alone."""
    if syncd is None:
        return None
    return sorted(SyncDaemon(str(role), syncd.interface, syncd.syncid) for role in syncd.roles)


def plan(
    want: Sequence[SyncDaemon] | None, running: Sequence[SyncDaemon]
) -> tuple[list[str], list[SyncDaemon]]:
    """Return (roles to stop, daemons to start); one with another link or id is restarted."""
    if want is None:
        return [], []
    by_role = {d.role: d for d in want}
    stop = [d.role for d in running if by_role.get(d.role) != d]
    have = set(running)
    return stop, [d for d in want if d not in have]


class SyncdControl(Plugin):
    """Keeps the kernel's sync daemons as syncd= says; reports them for status and metrics."""

    def __init__(self, config: Config, driver: object) -> None:
        self.config = config
        self.driver = driver if isinstance(driver, SyncDriver) else None
        self.running: list[SyncDaemon] = []  # as last read from the kernel
        self.error: str | None = None  # the last refusal, until a sync succeeds
        self._started: set[str] = set()  # roles healthd started (stopped on exit)
        self._wake = asyncio.Event()
        self._started_once = False

    async def start(self) -> None:
        await self.sync()
        self._started_once = True

    def reconfigure(self, config: Config) -> None:
        self.config = config  # applied when the engine runs it (on_state) and at each resync

    async def on_state(self, state: str) -> None:
        if state == "running" and self._started_once:
            await self.sync()  # after a reload

    async def run(self) -> None:
        while True:
            period = RETRY if self.error else self.config.resync_interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):  # not wait_for: see Plugin.run
                    await self._wake.wait()
            self._wake.clear()
            await self.sync()

    async def sync(self) -> None:
        """Read what runs, stop and start what differs; log and keep a refusal."""
        want = wanted(self.config.syncd)
        if self.driver is None or want is None:
            return
        try:
            self.running = await self.driver.daemons()
            stop, start = plan(want, self.running)
            for role in stop:
                await self.driver.stop_daemon(role)
                self._started.discard(role)
                log.info(logs.SYNCD_STOPPED, role=role)
            for daemon in start:
                await self.driver.start_daemon(daemon)
                self._started.add(daemon.role)
                log.info(logs.SYNCD_STARTED, role=daemon.role, interface=daemon.interface,
                         syncid=daemon.syncid)  # fmt: skip
            self.running = await self.driver.daemons()
            self.error = None
        except DriverError as exc:
            self.error = exc.message
            log.error(logs.SYNCD_FAILED, errno=exc.errno, detail=exc.message)  # noqa: TRY400

    async def aclose(self) -> None:
        """Stop the daemons healthd started (a refusal is logged)."""
        if self.driver is None:
            return
        for role in sorted(self._started):
            try:
                await self.driver.stop_daemon(role)
                log.info(logs.SYNCD_STOPPED, role=role)
            except DriverError as exc:
                log.error(logs.SYNCD_FAILED, errno=exc.errno, detail=exc.message)  # noqa: TRY400
        self._started.clear()

    def view(self) -> Mapping[str, object]:
        """The status view's `syncd`: what is configured, what runs, the last refusal."""
        want = wanted(self.config.syncd)
        if want is None:
            return {}  # syncd= not written: nothing to show
        return {
            "syncd": {
                "configured": [_plain(d) for d in want],
                "running": [_plain(d) for d in self.running],
                "error": self.error,
            }
        }

    def state(self) -> dict[str, bool]:
        """Return {role: running} for every role (the metrics' healthd_syncd_state)."""
        return {role: any(d.role == role for d in self.running) for role in ROLES}


def _plain(daemon: SyncDaemon) -> dict[str, object]:
    return {"role": daemon.role, "interface": daemon.interface, "syncid": daemon.syncid}
