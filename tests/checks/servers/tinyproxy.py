"""A real HTTP proxy, tinyproxy (Debian tinyproxy-bin), on a loopback address."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from tests.checks.servers import Process, ServerError, free_port, listening_tcp

CONFIG = """\
Port {port}
Listen {host}
Timeout 5
MaxClients 20
LogLevel Info
"""


@contextlib.contextmanager
def tinyproxy(host: str, workdir: Path) -> Iterator[int]:
    """Run tinyproxy in the foreground, listening on host only; yield its port."""
    binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
    if not Path(binary).exists():
        raise ServerError("tinyproxy is not installed (Debian package tinyproxy-bin)")
    port = free_port(host)
    conf = workdir / "tinyproxy.conf"
    conf.write_text(CONFIG.format(port=port, host=host))
    proc = Process("tinyproxy", [binary, "-d", "-c", str(conf)], workdir)
    try:
        proc.wait_until(lambda: listening_tcp(host, port), f"{host} {port}")
        yield port
    finally:
        proc.close()
