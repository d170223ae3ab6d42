"""Echo services from socat (Debian) on loopback: TCP (echoes until the client half-closes)
and UDP (echoes each datagram); and a TCP relay that puts an IPv4-only server on ::1."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from tests.checks.servers import Process, free_port, listening_tcp, listening_udp


@contextlib.contextmanager
def echo_server(host: str, workdir: Path, *, udp: bool = False) -> Iterator[int]:
    """Run a socat echo service on host; yield its port."""
    binary = shutil.which("socat") or "/usr/bin/socat"
    v6 = ":" in host
    bind = f"[{host}]" if v6 else host
    kind = socket_kind(udp, v6)
    port = free_port(host, 2 if udp else 1)  # SOCK_DGRAM / SOCK_STREAM
    address = f"{kind}:{port},bind={bind},fork" + ("" if udp else ",reuseaddr")
    proc = Process(f"socat-{kind.lower()}", [binary, address, "PIPE"], workdir)
    try:
        if udp:
            proc.wait_until(lambda: listening_udp(port), f"udp port {port}")
        else:
            proc.wait_until(lambda: listening_tcp(host, port), f"tcp port {port}")
        yield port
    finally:
        proc.close()


@contextlib.contextmanager
def tcp_relay(host: str, to_port: int, workdir: Path) -> Iterator[int]:
    """Relay each TCP connection on host to 127.0.0.1:to_port; yield the relay's port."""
    binary = shutil.which("socat") or "/usr/bin/socat"
    v6 = ":" in host
    port = free_port(host)
    listen = f"{'TCP6' if v6 else 'TCP4'}-LISTEN:{port},bind={f'[{host}]' if v6 else host}"
    argv = [binary, f"{listen},fork,reuseaddr", f"TCP4:127.0.0.1:{to_port}"]
    proc = Process("socat-relay", argv, workdir)
    try:
        proc.wait_until(lambda: listening_tcp(host, port), f"tcp port {port}")
        yield port
    finally:
        proc.close()


def socket_kind(udp: bool, v6: bool) -> str:
    """Return socat's address type for a listening echo socket."""
    if udp:
        return "UDP6-RECVFROM" if v6 else "UDP4-RECVFROM"
    return "TCP6-LISTEN" if v6 else "TCP4-LISTEN"
