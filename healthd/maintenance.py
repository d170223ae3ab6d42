"""maintenancedir: which file names hold which reals down (ldirectord's rules).

`forced_down` is pure: names in, health keys out. The two I/O edges are kept apart and
small: `scan` lists the directory, `lookup_hostname` asks the resolver for a real's name.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable, Mapping

from checks.base import host_text
from healthd.health import CheckKey, check_key, pairs
from healthd.model import Config, IPAddress, Real

# ldirectord: the short name is the first label, only for lower-case dotted names
_SHORT = re.compile(r"^([a-z][a-z0-9-]+)\.")


def short_name(hostname: str) -> str | None:
    """Return the first label of a dotted lower-case host name, as ldirectord takes it."""
    match = _SHORT.match(hostname)
    return match.group(1) if match else None


def names_for(real: Real, hostname: str | None = None) -> tuple[str, ...]:
    """Return the file names that put `real` in maintenance, in ldirectord's lookup order.

    `<ip>:<port>`, `<ip>`, `<fqdn>:<port>`, `<fqdn>`, `<short>:<port>`, `<short>`; IPv6
    in brackets as ldirectord stores it, plus the bare IPv6 address (a healthd extension:
    it cannot be mistaken for anything else).
    """
    port = real.port
    v6 = real.address.version == 6
    host = host_text(real.address)
    names = [f"{host}:{port}", host]
    if v6:
        names.append(str(real.address))
    if hostname:
        names += [f"{hostname}:{port}", hostname]
        short = short_name(hostname)
        if short:
            names += [f"{short}:{port}", short]
    return tuple(names)


def forced_down(
    names: Iterable[str], config: Config, hostnames: Mapping[IPAddress, str] | None = None
) -> set[CheckKey]:
    """Return the health keys of every real that a name in `names` puts in maintenance.

    `hostnames` maps a real's address to its reverse-resolved name (see lookup_hostname);
    reals without one match by address only. Maintenance beats every checktype.
    """
    present = set(names)
    if not present:
        return set()
    hostnames = hostnames or {}
    keys: set[CheckKey] = set()
    for virtual, real in pairs(config):
        if present.intersection(names_for(real, hostnames.get(real.address))):
            keys.add(check_key(virtual, real))
    return keys


def scan(directory: str | os.PathLike[str]) -> set[str]:
    """Return the names in the maintenance directory; empty if it is missing or unreadable."""
    try:
        return set(os.listdir(directory))
    except OSError:
        return set()


def lookup_hostname(address: IPAddress) -> str | None:
    """Return the reverse-resolved name of `address`, or None (blocking: run it in a thread)."""
    try:
        host, _ = socket.getnameinfo((str(address), 0), socket.NI_NAMEREQD)
    except OSError:
        return None
    return host
