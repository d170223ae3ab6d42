"""A real NNTP server (JamNNTPd, from Debian) on 127.0.0.1 with one empty newsgroup.

JamNNTPd listens on IPv4 only. `allow=False` starts it with an access list that does not
include 127.0.0.1, so it greets with `502 Access denied` (service permanently unavailable).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from tests.checks.servers import Process, free_port, listening_tcp

XLAT = "/etc/jamnntpd.xlat"  # the charset table shipped with the package


@contextlib.contextmanager
def jamnntpd(workdir: Path, *, allow: bool = True) -> Iterator[int]:
    """Run jamnntpd on a free 127.0.0.1 port; yield the port."""
    binary = shutil.which("jamnntpd") or "/usr/sbin/jamnntpd"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "groups").write_text(f"test.group A 2:1/1 {workdir}/area\n")
    (workdir / "allow").write_text("127.0.0.1 * -\n" if allow else "192.0.2.1 * -\n")
    (workdir / "users").write_text("")
    port = free_port("127.0.0.1")
    argv = [binary, "-p", str(port), "-g", "groups", "-a", "allow", "-u", "users"]
    argv += ["-x", XLAT, "-l", str(workdir / "jamnntpd.log"), "-noecholog"]
    proc = Process("jamnntpd", argv, workdir)
    try:
        proc.wait_until(lambda: listening_tcp("127.0.0.1", port), f"port {port}")
        yield port
    finally:
        proc.close()
