"""The benchmark's HTTP backend: one nginx process serving /ok.html on many loopback addresses.

Every real is its own address 127.1.X.Y on one shared port. A real answers 500 while a file
named after its address exists in the fail directory, so a run can make reals fail at known
instants. Loopback only; nothing here is part of healthd.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Final, Self

PER_BLOCK: Final = 250  # reals per 127.1.X.0/24 block (host parts .1 to .250)


def address(index: int) -> str:
    """Return the loopback address of the real with this 0-based index."""
    block, host = divmod(index, PER_BLOCK)
    if block > 255:
        raise ValueError(f"too many reals: {index + 1}")
    return f"127.1.{block}.{host + 1}"


def free_port(host: str) -> int:
    """Return a port that is free on `host` now (nginx binds it on every real's address)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _config(root: Path, addresses: list[str], port: int, access_log: bool) -> str:
    # one line per request when asked: what the VM start-up bench counts checks with
    log = (
        f"log_format real $server_addr;\n    access_log {root}/access.log real;"
        if access_log
        else "access_log off;"
    )
    listens = "\n".join(f"        listen {a}:{port} backlog=4096;" for a in addresses)
    temps = "\n".join(
        f"    {name}_temp_path {root}/tmp/{name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
worker_processes 1;
worker_rlimit_nofile {resource.getrlimit(resource.RLIMIT_NOFILE)[1]};
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log error;
events {{
    # every listening socket takes a connection slot of the worker
    worker_connections {len(addresses) + 8192};
    multi_accept on;
}}
http {{
    {log}
    server_tokens off;
    keepalive_timeout 0;
{temps}
    server {{
{listens}
        location = /ok.html {{
            default_type text/html;
            if (-f {root}/fail/$server_addr) {{
                return 500;
            }}
            return 200 "ok\\n";
        }}
    }}
}}
"""


def _more_files() -> None:
    """Raise nginx's soft RLIMIT_NOFILE (one socket per listening address) to the hard one."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Backend:
    """Runs nginx pinned to one core; `fail(addr)` and `restore(addr)` flip a real's answer."""

    def __init__(
        self,
        count: int,
        *,
        core: int,
        root: Path,
        nice: int = 0,
        port: int | None = None,
        access_log: bool = False,
    ) -> None:
        self.addresses = [address(i) for i in range(count)]
        self.root = root
        self.port = port or free_port(self.addresses[0])
        self.access_log = root / "access.log" if access_log else None
        self.core = core
        self.nice = nice
        self.faildir = root / "fail"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx):
            raise SystemExit("nginx not found: apt-get install nginx (the backend of the bench)")
        for sub in ("fail", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # nginx's worker drops to an unprivileged user: let it look up the fail files
        for path in (self.root, self.faildir):
            path.chmod(0o755)
        conf = self.root / "nginx.conf"
        conf.write_text(_config(self.root, self.addresses, self.port, self.access_log is not None))
        cmd = ["taskset", "-c", str(self.core), nginx, "-c", str(conf), "-p", str(self.root)]
        if self.nice:
            cmd = ["nice", "-n", str(self.nice), *cmd]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=_more_files)
        self._wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        last = self.addresses[-1]
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                err = (self.root / "error.log").read_text(errors="replace")[-500:]
                raise SystemExit(f"nginx exited with {self._proc.returncode}: {err}")
            try:
                with socket.create_connection((last, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("nginx did not start listening within 30 s")

    def worker_pids(self) -> list[int]:
        """Return the pids of nginx's processes (the master's children and the master)."""
        if self._proc is None:
            return []
        master = self._proc.pid
        children = Path(f"/proc/{master}/task/{master}/children")
        found = [int(p) for p in children.read_text().split()] if children.exists() else []
        # nice and taskset exec nginx in place, so the Popen pid is nginx's master itself
        return [master, *found]


def cpu_ticks(pids: list[int]) -> int:
    """Return the CPU clock ticks (user + system) these processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total
