"""Network namespaces, veth pairs and processes inside them, for kernel tests.

A Lab creates namespaces (``ip netns add``), links them with veth pairs carrying addresses
from the documentation ranges, runs commands in them (``ip netns exec``) and, on close(),
kills what it started and deletes every namespace (their interfaces go with them). Needs root
and a kernel with veth and dummy: the test VM.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_interface
from types import TracebackType

# Example addresses only (RFC 5737, RFC 3849).
DOC_NETS = (
    IPv4Network("192.0.2.0/24"),
    IPv4Network("198.51.100.0/24"),
    IPv4Network("203.0.113.0/24"),
)


class NetnsError(Exception):
    """An ip(8) command failed; the message is ip's own error line."""


def ip(*args: str) -> str:
    """Run ``ip ARGS`` and return its output; raise NetnsError with ip's message on failure."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Netns:
    """One network namespace, by name."""

    name: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def argv(self, command: Sequence[str]) -> list[str]:
        """Return COMMAND prefixed to run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *command]

    def run(
        self, command: Sequence[str], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run COMMAND inside the namespace to completion, capturing its output as text."""
        return subprocess.run(self.argv(command), capture_output=True, text=True, check=check)

    def popen(self, command: Sequence[str]) -> subprocess.Popen[str]:
        """Start COMMAND inside the namespace; the Lab kills it on close()."""
        proc = subprocess.Popen(
            self.argv(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def ip(self, *args: str) -> str:
        """Run ``ip -n NAME ARGS``."""
        return ip("-n", self.name, *args)


def add_address(ns: Netns, dev: str, address: str) -> None:
    """Give DEV in NS the ADDRESS (CIDR) and bring DEV up."""
    # nodad: an IPv6 address is usable at once instead of after duplicate detection.
    extra = ["nodad"] if ip_interface(address).version == 6 else []
    ns.ip("addr", "add", address, "dev", dev, *extra)
    ns.ip("link", "set", dev, "up")


class Lab:
    """Namespaces and links for one test; use as a context manager, or call close()."""

    def __init__(self, prefix: str = "hd") -> None:
        self.prefix = f"{prefix}{os.getpid()}"
        self.namespaces: list[Netns] = []
        self._ids = itertools.count()

    def netns(self, label: str) -> Netns:
        """Create a namespace with loopback up; its name is unique to this process."""
        ns = Netns(f"{self.prefix}-{label}-{next(self._ids)}")
        ip("netns", "add", ns.name)
        self.namespaces.append(ns)
        ns.ip("link", "set", "lo", "up")
        return ns

    def veth(self, a: Netns, a_address: str, b: Netns, b_address: str) -> tuple[str, str]:
        """Link A and B with a veth pair, give each end an address (CIDR); return the names."""
        n = next(self._ids)
        a_dev, b_dev = f"veth{n}a", f"veth{n}b"
        ip("link", "add", a_dev, "netns", a.name, "type", "veth", "peer", b_dev, "netns", b.name)
        add_address(a, a_dev, a_address)
        add_address(b, b_dev, b_address)
        return a_dev, b_dev

    def dummy(self, ns: Netns, *addresses: str) -> str:
        """Add a dummy interface to NS holding ADDRESSES (a place for virtual IPs)."""
        dev = f"dummy{next(self._ids)}"
        ns.ip("link", "add", dev, "type", "dummy")
        for address in addresses:
            add_address(ns, dev, address)
        ns.ip("link", "set", dev, "up")
        return dev

    def close(self) -> None:
        """Kill the processes started in the namespaces, then delete the namespaces."""
        for ns in self.namespaces:
            for proc in ns.procs:
                proc.kill()
                proc.communicate()
        errors = []
        for ns in reversed(self.namespaces):
            try:
                ip("netns", "del", ns.name)
            except NetnsError as exc:
                errors.append(str(exc))
        self.namespaces.clear()
        if errors:
            raise NetnsError("; ".join(errors))

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
