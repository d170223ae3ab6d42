"""A real DNS server (dnsmasq, Debian's dnsmasq-base) on loopback, UDP and TCP.

It answers authoritatively for example.com from --host-record lines (A records and their
PTRs) and never forwards anything: no upstream servers, no /etc/hosts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from tests.checks.servers import Process, ServerError, free_port, listening_tcp, listening_udp

# name -> address; dnsmasq also serves the matching PTR records
RECORDS = {"www.example.com": "192.0.2.10", "db.example.com": "192.0.2.20"}


def _binary() -> str:
    found = shutil.which("dnsmasq") or (
        "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None
    )
    if found is None:
        raise ServerError("dnsmasq is not installed (Debian package dnsmasq-base)")
    return found


@contextlib.contextmanager
def dnsmasq(host: str, workdir: Path) -> Iterator[int]:
    """Run dnsmasq in the foreground on `host` (UDP and TCP, the same port); yield the port."""
    port = free_port(host)
    argv = [
        _binary(), "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
        "--no-hosts", "--no-poll", "--bind-interfaces", f"--listen-address={host}",
        f"--port={port}", f"--pid-file={workdir}/dnsmasq.pid", "--local=/example.com/",
        "--log-facility=-", "--user=" + ("root" if os.geteuid() == 0 else ""),
    ]  # fmt: skip
    if os.geteuid() != 0:
        argv.remove("--user=")
    argv += [f"--host-record={name},{address}" for name, address in RECORDS.items()]
    proc = Process("dnsmasq", argv, workdir)
    try:
        proc.wait_until(lambda: listening_tcp(host, port) and listening_udp(port), f"port {port}")
        yield port
    finally:
        proc.close()
