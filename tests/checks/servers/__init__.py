"""Real servers for the check tests, started on loopback ports and stopped after.

Each module here starts one real implementation (dovecot, pyftpdlib, aiosmtpd, jamnntpd, sipp,
socat, MariaDB, PostgreSQL, slapd, FreeRADIUS, dnsmasq, tinyproxy) as a child process and
waits until it listens. A server that cannot start raises, so its tests fail instead of
skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

START_TIMEOUT = 15.0  # seconds a server may take to start listening
HERE = Path(__file__).parent


class ServerError(RuntimeError):
    """A test server did not start."""


def free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    """Return a port on `host` that was free a moment ago (for servers that need a number)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def listening_tcp(host: str, port: int) -> bool:
    """Return True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def listening_udp(port: int) -> bool:
    """Return True when some local UDP socket is bound to `port` (from /proc/net/udp*)."""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for row in f.readlines()[1:]:
                local = row.split()[1]
                if int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


class Process:
    """A server child process with its output in a log file; stopped on close()."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path) -> None:
        self.name = name
        self.log = workdir / f"{name}.out"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                start_new_session=True,
            )

    def wait_until(self, ready: object, what: str) -> None:
        """Poll `ready()` until it is true; raise ServerError if the process dies or stalls."""
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():  # type: ignore[operator]
            if self.proc.poll() is not None or time.monotonic() > deadline:
                output = self.log.read_text(errors="replace")[-2000:]
                self.close()
                raise ServerError(f"{self.name} did not start ({what}):\n{output}")
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the process group: TERM, then KILL after a few seconds."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@contextlib.contextmanager
def world_readable_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory that unprivileged server processes can enter (removed after)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
