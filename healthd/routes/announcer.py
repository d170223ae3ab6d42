"""The announcer: keeps each announced virtual's route in the kernel while it carries traffic.

A plugin of the daemon. It hears the engine's fallback changes (a virtual has a real up, or
not), plans with healthd.routes.plan and applies through healthd.routes.rtnl, opened only
when the configuration announces something. Nothing is announced before the engine's
first reconcile has judged health; everything is withdrawn when the daemon stops (before
cleanstop empties the IPVS table). A kernel refusal is logged (`route.apply_failed`) and
retried every RETRY seconds, never fatal; every resync_interval the wanted routes are
asserted again, which puts back one deleted by hand. At the first sync the configured
routes already in the kernel (a crash's leftovers) are adopted, so those no longer wanted
are withdrawn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from healthd import logs
from healthd.errors import DriverError
from healthd.plugins import Plugin
from healthd.routes.plan import Route, configured, desired, plan

if TYPE_CHECKING:
    from healthd.model import Config, Virtual

log = logs.get_logger("healthd.routes")

RETRY = 1.0  # seconds between attempts while the kernel refuses a change


class RouteTable(Protocol):
    """What the announcer needs of the kernel (healthd.routes.rtnl.Rtnl)."""

    async def announce(self, route: Route) -> None: ...

    async def withdraw(self, route: Route) -> None: ...

    async def present(self, route: Route) -> bool: ...

    def close(self) -> None: ...


def _open_rtnl() -> RouteTable:
    from healthd.routes.rtnl import Rtnl  # pyroute2 only when something is announced

    return Rtnl()


class Announcer(Plugin):
    """Announces and withdraws the VIP routes of the running configuration."""

    def __init__(
        self, config: Config, *, open_table: Callable[[], RouteTable] = _open_rtnl
    ) -> None:
        self.config = config
        self.announced: frozenset[Route] = frozenset()  # what the kernel holds, as applied
        self.failing: frozenset[Route] = frozenset()  # refused at the last attempt
        self._fallback: dict[str, bool] = {}
        self._open = open_table
        self._table: RouteTable | None = None
        self._judged = False  # the engine's first reconcile has told each virtual's state
        self._adopted = False
        self._wake = asyncio.Event()

    async def on_fallback(self, virtual: Virtual, active: bool) -> None:
        self._fallback[virtual.name] = active
        self._wake.set()

    async def on_state(self, state: str) -> None:
        if state == "running":
            self._judged = True
            await self.sync()
        elif state == "stopping":
            self._judged = False
            await self.withdraw_all()

    def reconfigure(self, config: Config) -> None:
        names = {v.name for v in config.virtuals}
        self._fallback = {n: a for n, a in self._fallback.items() if n in names}
        self.config = config  # planned when the engine runs it (on_state "running")

    async def run(self) -> None:
        """Apply changes as they come; retry refusals; reassert every resync_interval."""
        while True:
            period = RETRY if self.failing else self.config.resync_interval
            timed_out = False
            try:
                async with asyncio.timeout(period):  # not wait_for: see Plugin.run
                    await self._wake.wait()
            except TimeoutError:
                timed_out = True
            self._wake.clear()
            await self.sync(reassert=timed_out and not self.failing)

    async def sync(self, *, reassert: bool = False) -> None:
        """Bring the kernel in line with the virtuals' states (a no-op before the first)."""
        if not self._judged:
            return
        table = self._ensure(configured(self.config.virtuals) | self.announced)
        if table is None:
            return
        if not self._adopted:
            self._adopted = True
            for route in configured(self.config.virtuals):
                with contextlib.suppress(Exception):  # unknown: withdrawn if unwanted anyway
                    if await table.present(route):
                        self.announced |= {route}
        want = desired(self.config.virtuals, self._fallback)
        steps = plan(want, self.announced, reassert=reassert)
        failing = {r for r in self.failing if r in want or r in self.announced}
        for route in steps.withdraw:
            if await self._apply(table, route, announce=False):
                failing.discard(route)
            else:
                failing.add(route)
        for route in steps.announce:
            if await self._apply(table, route, announce=True):
                failing.discard(route)
            else:
                failing.add(route)
        self.failing = frozenset(failing)

    async def withdraw_all(self) -> None:
        """Withdraw every route announced (the daemon stops); refusals are logged."""
        if self._table is None:
            return
        for route in sorted(self.announced, key=str):
            await self._apply(self._table, route, announce=False)

    async def aclose(self) -> None:
        await self.withdraw_all()
        if self._table is not None:
            self._table.close()
            self._table = None

    def view(self) -> Mapping[str, object]:
        """The status view's `routes`: each configured announcement and its state."""
        routes = sorted(configured(self.config.virtuals) | self.announced, key=str)
        return {"routes": [self._route_view(r) for r in routes]} if routes else {}

    def _route_view(self, route: Route) -> dict[str, object]:
        return {
            "route": str(route),
            "announced": route in self.announced,
            "error": route in self.failing,
        }

    def _ensure(self, routes: frozenset[Route]) -> RouteTable | None:
        if self._table is None and routes:
            self._table = self._open()
        return self._table

    async def _apply(self, table: RouteTable, route: Route, *, announce: bool) -> bool:
        try:
            await (table.announce(route) if announce else table.withdraw(route))
        except DriverError as exc:
            # expected kernel trouble (EPERM, a missing table or device): one line, retried
            log.error(  # noqa: TRY400
                logs.ROUTE_FAILED, route=str(route), errno=exc.errno, detail=exc.message
            )
            return False
        except Exception as exc:  # isolation: a failure of the route table never ends healthd
            log.exception(logs.ROUTE_FAILED, route=str(route), errno=0, detail=repr(exc))
            return False
        if announce and route not in self.announced:
            log.info(logs.ROUTE_ANNOUNCED, route=str(route))
        elif not announce and route in self.announced:
            log.info(logs.ROUTE_WITHDRAWN, route=str(route))
        self.announced = self.announced | {route} if announce else self.announced - {route}
        return True
