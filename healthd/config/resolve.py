"""Host and service name resolution for the configuration: the config package's only I/O.

build.py asks an injected Resolver; SystemResolver uses getaddrinfo and /etc/services
(blocking: load() therefore runs in a worker thread when called from the event loop), the
routing table names of iproute2's rt_tables files and the interfaces of this network
namespace (announce_table=, announce_interface=, syncd_interface=);
StaticResolver answers from tables (tests, or names resolved ahead of time).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Protocol

from healthd.model import IPAddress

_FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}


class Resolver(Protocol):
    """Turns host names into addresses and service names into ports."""

    def host(self, name: str, family: int) -> IPAddress | None:
        """Return the first address of `name` in family 4 or 6, or None if it has none."""
        ...

    def service(self, name: str, proto: str) -> int | None:
        """Return the port of service `name` for proto tcp/udp/sctp (or "" for any)."""
        ...

    def table(self, name: str) -> int | None:
        """Return the number of routing table `name`, or None if no rt_tables file names it."""
        ...

    def interface(self, name: str) -> bool:
        """Return whether network interface `name` exists here."""
        ...


class SystemResolver:
    """Resolver over the system's getaddrinfo and /etc/services (blocking calls)."""

    def host(self, name: str, family: int) -> IPAddress | None:
        """Return the first address getaddrinfo gives for `name`, or None."""
        try:
            infos = socket.getaddrinfo(name, None, _FAMILIES[family], socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return None
        for info in infos:
            text = str(info[4][0]).partition("%")[0]
            return ip_address(text)
        return None

    def service(self, name: str, proto: str) -> int | None:
        """Return the port of `name` for `proto` (then tcp, then udp), or None."""
        for candidate in dict.fromkeys((proto, "tcp", "udp")):
            if not candidate:
                continue
            try:
                return socket.getservbyname(name, candidate)
            except OSError:
                continue
        return None

    def table(self, name: str) -> int | None:
        """Return the table's number from iproute2's rt_tables files (later files win)."""
        return rt_tables().get(name)

    def interface(self, name: str) -> bool:
        """Return whether the interface exists in this network namespace."""
        try:
            socket.if_nametoindex(name)
        except OSError:
            return False
        return True


RT_TABLES = (Path("/usr/share/iproute2"), Path("/etc/iproute2"))


def rt_tables(dirs: Sequence[Path] = RT_TABLES) -> dict[str, int]:
    """Return {name: number} from rt_tables and rt_tables.d/*.conf under each directory."""
    found: dict[str, int] = {"main": 254, "local": 255, "default": 253}
    for base in dirs:
        for path in [base / "rt_tables", *sorted((base / "rt_tables.d").glob("*.conf"))]:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                words = line.partition("#")[0].split()
                if len(words) >= 2 and words[0].isdigit():
                    found[words[1]] = int(words[0])
    return found


@dataclass(frozen=True, slots=True)
class StaticResolver:
    """Resolver answering from fixed tables: {name: [addresses]} and {name: port}."""

    hosts: Mapping[str, Sequence[str]] = field(default_factory=dict)
    services: Mapping[str, int] = field(default_factory=dict)
    tables: Mapping[str, int] = field(default_factory=lambda: {"main": 254})
    interfaces: frozenset[str] = frozenset({"lo"})

    def host(self, name: str, family: int) -> IPAddress | None:
        """Return the first listed address of `name` in the family, or None."""
        for text in self.hosts.get(name, ()):
            address = ip_address(text)
            if address.version == family:
                return address
        return None

    def service(self, name: str, proto: str) -> int | None:
        """Return the listed port of `name` (any protocol), or None."""
        return self.services.get(name)

    def table(self, name: str) -> int | None:
        """Return the listed number of table `name`, or None."""
        return self.tables.get(name)

    def interface(self, name: str) -> bool:
        """Return whether `name` is a listed interface."""
        return name in self.interfaces
