"""Pure planning of route announcements: which VIPs to announce, and what to change.

A virtual with announce_table= or announce_interface= is announced while it carries
traffic: a real is up, or (announce_fallback=yes) only its fallback is left. Virtuals that
share an address and an announcement share one Route: it stays while any of them carries
traffic. No I/O; healthd.routes.announcer applies the plan through healthd.routes.rtnl.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from checks.base import host_text
from healthd.model import IPAddress, Virtual


@dataclass(frozen=True, slots=True)
class Route:
    """One announcement: a host route in a table, or the address on an interface."""

    address: IPAddress
    table: int | None = None  # a host route in this routing table
    interface: str | None = None  # or the address on this interface

    @property
    def prefixlen(self) -> int:
        return self.address.max_prefixlen

    @property
    def family(self) -> int:
        return self.address.version

    def __str__(self) -> str:
        prefix = f"{host_text(self.address).strip('[]')}/{self.prefixlen}"
        if self.table is not None:
            return f"route {prefix} table {self.table}"
        return f"address {prefix} dev {self.interface}"


def route_of(virtual: Virtual) -> Route | None:
    """Return the virtual's announcement, or None when it has none."""
    a = virtual.announce
    if a is None or virtual.address is None:
        return None
    return Route(virtual.address, a.table, a.interface)


def carries(virtual: Virtual, fallback_active: bool | None) -> bool:
    """Return whether the virtual should be announced given its fallback state.

    fallback_active is None until the engine's first reconcile has judged the virtual:
    nothing is announced before health is known.
    """
    if fallback_active is None:
        return False
    if not fallback_active:
        return True
    return (
        virtual.announce is not None and virtual.announce.fallback and virtual.fallback is not None
    )


def desired(virtuals: Iterable[Virtual], fallback: Mapping[str, bool]) -> frozenset[Route]:
    """Return every route that should be announced now."""
    out: set[Route] = set()
    for virtual in virtuals:
        route = route_of(virtual)
        if route is not None and carries(virtual, fallback.get(virtual.name)):
            out.add(route)
    return frozenset(out)


def configured(virtuals: Iterable[Virtual]) -> frozenset[Route]:
    """Return every route the configuration may announce (what to adopt or clean up)."""
    return frozenset(r for v in virtuals if (r := route_of(v)) is not None)


@dataclass(frozen=True, slots=True)
class Plan:
    """What to change: withdrawals first (they never add traffic), then announcements."""

    withdraw: tuple[Route, ...]
    announce: tuple[Route, ...]

    def __bool__(self) -> bool:
        return bool(self.withdraw or self.announce)


def plan(want: frozenset[Route], have: frozenset[Route], *, reassert: bool = False) -> Plan:
    """Return the changes from `have` to `want`; `reassert` announces every wanted route
    again (idempotent in the kernel), which repairs a route deleted behind healthd's back."""
    add = want if reassert else want - have
    return Plan(tuple(sorted(have - want, key=_order)), tuple(sorted(add, key=_order)))


def _order(route: Route) -> tuple[int, int, int, str]:
    return (route.family, int(route.address), route.table or 0, route.interface or "")
