"""Host and service name resolution for the configuration: the config package's only I/O.

build.py asks an injected Resolver; SystemResolver uses getaddrinfo and /etc/services
(blocking: load() therefore runs in a worker thread when called from the event loop),
StaticResolver answers from tables (tests, or names resolved ahead of time).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
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


@dataclass(frozen=True, slots=True)
class StaticResolver:
    """Resolver answering from fixed tables: {name: [addresses]} and {name: port}."""

    hosts: Mapping[str, Sequence[str]] = field(default_factory=dict)
    services: Mapping[str, int] = field(default_factory=dict)

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
