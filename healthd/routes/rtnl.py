"""The rtnetlink edge of route announcement: add, remove and list healthd's routes.

The only module that imports pyroute2, and only when a virtual uses announce_* (the
announcer opens it lazily): loading pyroute2 costs a noticeable part of a start. Its
blocking IPRoute runs in one worker thread of its own (pyroute2's asyncio socket does not
run on uvloop, the daemon's loop); each call is one quick netlink round trip. Every
kernel refusal becomes a RouteError with the kernel's errno, for the announcer to log and
retry; a withdrawal of what is already gone, or an address already there, is success.

Host routes are `VIP/32` (or /128) `dev lo` with protocol RTPROT_HEALTHD in the table
configured, so a routing daemon can select them (BIRD: `krt_source = 211`; FRR: `proto 211`)
and a restart after a crash finds its own leftovers.
"""

from __future__ import annotations

import asyncio
import errno
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from healthd.errors import DriverError

if TYPE_CHECKING:
    from healthd.routes.plan import Route

RTPROT_HEALTHD = 211  # rtm_protocol of healthd's routes (iproute2's rt_protos has no 211)
RT_SCOPE_LINK = 253
IFA_F_NODAD = 0x02  # an IPv6 VIP is usable at once, no duplicate address detection
ROUTE_DEVICE = "lo"
GONE = frozenset({errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL, errno.ENODEV})


class RouteError(DriverError):
    """The kernel refused a route or address change (errno as the kernel said)."""


class Rtnl:
    """An rtnetlink socket of this network namespace (pyroute2's IPRoute, in a thread)."""

    def __init__(self) -> None:
        from pyroute2.netlink.exceptions import NetlinkError  # lazily: only when announcing

        self._failure: tuple[type[Exception], ...] = (OSError, NetlinkError)
        self._index: dict[str, int] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="rtnl")
        self._ipr: Any = None

    def close(self) -> None:
        ipr, self._ipr = self._ipr, None
        if ipr is not None:
            self._pool.submit(ipr.close)
        self._pool.shutdown(wait=True)

    async def _run(self, method: str, *args: object, **kwargs: object) -> Any:
        """Call IPRoute.METHOD in the worker thread (the socket opens there at first use)."""

        def call() -> Any:
            if self._ipr is None:
                from pyroute2 import IPRoute

                self._ipr = IPRoute()
            return list(getattr(self._ipr, method)(*args, **kwargs))

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def announce(self, route: Route) -> None:
        """Install the route (replacing an equal one) or add the address (kept if there)."""
        await self._call(route, "replace" if route.table is not None else "add")

    async def withdraw(self, route: Route) -> None:
        """Remove the route or address; one already gone is no error."""
        await self._call(route, "del")

    async def present(self, route: Route) -> bool:
        """Return whether the kernel holds the route (healthd's protocol) or the address."""
        try:
            if route.table is not None:
                routes = await self._run("route", "dump", family=_af(route))
                return any(_is_route(m, route) for m in routes)
            index = await self._ifindex(route.interface or "")
            addrs = await self._run("addr", "dump", family=_af(route))
            return any(_is_addr(m, route, index) for m in addrs)
        except RouteError:
            return False
        except self._failure as exc:
            raise _error(route, exc) from None

    async def _call(self, route: Route, command: str) -> None:
        try:
            if route.table is not None:
                await self._run("route", command, **await self._route_args(route))
            else:
                await self._run("addr", command, **await self._addr_args(route))
        except self._failure as exc:
            code = _code(exc)
            if (command == "del" and code in GONE) or (command == "add" and code == errno.EEXIST):
                return
            raise _error(route, exc) from None

    async def _route_args(self, route: Route) -> dict[str, object]:
        return {
            "dst": f"{route.address}/{route.prefixlen}",
            "family": _af(route),
            "table": route.table,
            "oif": await self._ifindex(ROUTE_DEVICE),
            "proto": RTPROT_HEALTHD,
            "scope": RT_SCOPE_LINK,
        }

    async def _addr_args(self, route: Route) -> dict[str, object]:
        args: dict[str, object] = {
            "index": await self._ifindex(route.interface or ""),
            "address": str(route.address),
            "prefixlen": route.prefixlen,
        }
        if route.family == 6:
            args["flags"] = IFA_F_NODAD
        return args

    async def _ifindex(self, name: str) -> int:
        if name not in self._index:
            found = await self._run("link_lookup", ifname=name)
            if not found:
                raise RouteError(name, errno.ENODEV, f"no network interface {name!r}")
            self._index[name] = int(found[0])
        return self._index[name]


def _af(route: Route) -> int:
    import socket

    return socket.AF_INET6 if route.family == 6 else socket.AF_INET


def _code(exc: Exception) -> int:
    code = getattr(exc, "code", None)  # pyroute2's NetlinkError carries the errno as code
    if isinstance(code, int):
        return code
    return int(getattr(exc, "errno", 0) or 0)


def _error(route: Route, exc: Exception) -> RouteError:
    code = _code(exc)
    name = errno.errorcode.get(code)
    reason = os.strerror(code) if code else str(exc)
    return RouteError(route, code, f"{name}: {reason}" if name else reason)


def _is_route(msg: Any, route: Route) -> bool:
    return bool(
        msg.get("dst") == str(route.address)
        and msg.get("dst_len") == route.prefixlen
        and msg.get("table") == route.table
        and msg.get("proto") == RTPROT_HEALTHD
    )


def _is_addr(msg: Any, route: Route, index: int) -> bool:
    return bool(
        msg.get("index") == index
        and msg.get("address") == str(route.address)
        and msg.get("prefixlen") == route.prefixlen
    )
