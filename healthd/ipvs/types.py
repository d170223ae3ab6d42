"""IPVS value types: service and destination keys, their settings, a table, and operations.

Pure values with readable __str__ for logs; no I/O, no pyroute2. The driver turns Ops into
netlink messages, the reconciler produces them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Final

IPAddress = IPv4Address | IPv6Address


def host_text(address: IPAddress) -> str:
    """Return an address as it goes into `host:port` text: IPv6 in brackets, IPv4 as is."""
    return f"[{address}]" if address.version == 6 else str(address)


class Protocol(enum.StrEnum):
    """Service protocol; FWM marks a firewall-mark service (no address, no port)."""

    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"
    FWM = "fwm"


class Method(enum.StrEnum):
    """Forwarding method as the kernel names it (ldirectord: masq, gate, ipip)."""

    MASQ = "masq"  # NAT
    ROUTE = "route"  # direct routing, ldirectord "gate"
    TUNNEL = "tunnel"  # IP-in-IP, ldirectord "ipip"


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    """Identity of a virtual service: protocol address:port, or a firewall mark and family."""

    proto: Protocol
    address: IPAddress | None = None
    port: int = 0
    fwmark: int = 0
    family: int = 4  # 4 or 6; for address services it follows the address

    def __post_init__(self) -> None:
        if self.address is not None and self.address.version != self.family:
            object.__setattr__(self, "family", self.address.version)

    def __str__(self) -> str:
        if self.proto is Protocol.FWM:
            return f"fwm{'6' if self.family == 6 else ''}/{self.fwmark}"
        assert self.address is not None
        return f"{self.proto}/{host_text(self.address)}:{self.port}"


# kernel: the three scheduler flag bits carry per-scheduler names (ipvsadm's -b words)
SCHED_FLAG_BITS: Final[Mapping[str, int]] = {
    "flag-1": 0x08,
    "flag-2": 0x10,
    "flag-3": 0x20,
    "sh-fallback": 0x08,
    "sh-port": 0x10,
    "mh-fallback": 0x08,
    "mh-port": 0x10,
}


def sched_flag_names(scheduler: str, bits: int) -> frozenset[str]:
    """Return the names ipvsadm uses for scheduler flag bits under this scheduler."""
    names = {0x08: "flag-1", 0x10: "flag-2", 0x20: "flag-3"}
    if scheduler in ("sh", "mh"):
        names = {**names, 0x08: f"{scheduler}-fallback", 0x10: f"{scheduler}-port"}
    return frozenset(name for bit, name in names.items() if bits & bit)


def _canonical_netmask(family: int, netmask: str | int | None) -> str | int | None:
    # kernel: a persistent service always has a netmask (v4 255.255.255.255, v6 /128), so
    # None and the full mask are the same setting; valid forms are made uniform, invalid
    # ones are kept for the driver to refuse with EINVAL.
    if family == 6:
        if netmask is None:
            return 128
        if isinstance(netmask, str) and netmask.isdigit():
            return int(netmask)
        return netmask
    if netmask is None:
        return "255.255.255.255"
    if isinstance(netmask, int) or netmask.isdigit():
        plen = int(netmask)
        if 0 <= plen <= 32:
            return str(IPv4Address((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF))
        return netmask
    try:
        return str(IPv4Address(netmask))
    except ValueError:
        return netmask


@dataclass(frozen=True, slots=True)
class Service:
    """The settings of a virtual service that the kernel holds.

    Values are canonical after construction, so a desired Service compares equal to the
    dumped one: the netmask is None unless persistent, else a dotted IPv4 mask or an int
    IPv6 prefix length (default: the full mask); scheduler flags use ipvsadm's names for
    the scheduler (flag-1 under sh is sh-fallback).
    """

    key: ServiceKey
    scheduler: str = "wrr"
    persistent: int | None = None  # timeout in seconds; None: not persistent
    netmask: str | int | None = None  # IPv4 dotted mask, or IPv6 prefix length
    one_packet: bool = False  # ops
    sched_flags: frozenset[str] = frozenset()  # e.g. {"sh-fallback", "sh-port"}

    def __post_init__(self) -> None:
        netmask = None
        if self.persistent is not None:
            netmask = _canonical_netmask(self.key.family, self.netmask)
        object.__setattr__(self, "netmask", netmask)
        flags = frozenset(self.sched_flags)
        if flags <= SCHED_FLAG_BITS.keys():
            bits = sum({SCHED_FLAG_BITS[f] for f in flags})
            flags = sched_flag_names(self.scheduler, bits)
        object.__setattr__(self, "sched_flags", flags)

    @property
    def flag_bits(self) -> int:
        """Return the scheduler flag bits (unknown names count for nothing)."""
        return sum({SCHED_FLAG_BITS[f] for f in self.sched_flags if f in SCHED_FLAG_BITS})

    def __str__(self) -> str:
        parts = [str(self.key), f"sched={self.scheduler}"]
        if self.persistent is not None:
            parts.append(f"persistent={self.persistent}")
            if self.netmask is not None:
                parts.append(f"netmask={self.netmask}")
        if self.one_packet:
            parts.append("ops")
        if self.sched_flags:
            parts.append("flags=" + ",".join(sorted(self.sched_flags)))
        return " ".join(parts)


@dataclass(frozen=True, slots=True, order=True)
class DestKey:
    """Identity of a destination inside a service."""

    address: IPAddress
    port: int

    def __str__(self) -> str:
        return f"{host_text(self.address)}:{self.port}"


@dataclass(frozen=True, slots=True)
class Dest:
    """A destination (real server) and the settings the kernel holds for it."""

    key: DestKey
    weight: int = 1
    method: Method = Method.ROUTE
    upper: int = 0  # u-threshold, 0 = unlimited
    lower: int = 0  # l-threshold

    def __str__(self) -> str:
        s = f"{self.key} {self.method} w={self.weight}"
        if self.upper or self.lower:
            s += f" u={self.upper} l={self.lower}"
        return s


@dataclass(frozen=True, slots=True)
class Counters:
    """Traffic counters of a service or destination as dumped from the kernel."""

    active_conns: int = 0
    inactive_conns: int = 0
    persist_conns: int = 0
    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """A service with its destinations, keyed by DestKey, as in a dump or a desired table."""

    service: Service
    dests: Mapping[DestKey, Dest] = field(default_factory=dict)
    counters: Counters | None = field(default=None, compare=False)
    dest_counters: Mapping[DestKey, Counters] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Table:
    """A whole IPVS table (or the owned part of one), keyed by ServiceKey."""

    services: Mapping[ServiceKey, ServiceEntry] = field(default_factory=dict)


# --- operations ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddService:
    service: Service

    def __str__(self) -> str:
        return f"add-service {self.service}"


@dataclass(frozen=True, slots=True)
class EditService:
    service: Service

    def __str__(self) -> str:
        return f"edit-service {self.service}"


@dataclass(frozen=True, slots=True)
class DelService:
    key: ServiceKey

    def __str__(self) -> str:
        return f"del-service {self.key}"


@dataclass(frozen=True, slots=True)
class AddDest:
    service: ServiceKey
    dest: Dest

    def __str__(self) -> str:
        return f"add-dest {self.service} {self.dest}"


@dataclass(frozen=True, slots=True)
class EditDest:
    service: ServiceKey
    dest: Dest

    def __str__(self) -> str:
        return f"edit-dest {self.service} {self.dest}"


@dataclass(frozen=True, slots=True)
class DelDest:
    service: ServiceKey
    key: DestKey

    def __str__(self) -> str:
        return f"del-dest {self.service} {self.key}"


Op = AddService | EditService | DelService | AddDest | EditDest | DelDest
