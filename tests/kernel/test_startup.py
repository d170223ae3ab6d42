"""Start-up at a few hundred reals in the real kernel: `healthd -c FILE` fills the table from cold.

In a namespace of its own in the test VM, one nginx serves /ok.html on 300 loopback addresses
127.1.X.Y:80 and healthd checks them all (30 virtuals of 10, HTTP every 2 s, timeout 3 s,
quiescent=no, so a real enters the table only after passing a check). The emulated VM is a
slow machine: before the scheduler kept its checks in flight to what the loop can finish in
time, every check there ran out of time together and the table stayed nearly empty for
minutes. The bound is generous (a loaded CI host); bench/vm_startup.py measures the real
figures against keepalived.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kernel.netns import Lab, Netns

pytestmark = pytest.mark.kernel

REALS = 300
PER_VIRTUAL = 10
BOUND = 90.0  # seconds from exec to a full table: generous, for a loaded CI host


def address(i: int) -> str:
    block, host = divmod(i, 250)
    return f"127.1.{block}.{host + 1}"


def nginx_config(root: Path) -> str:
    listens = "".join(f"        listen {address(i)}:80;\n" for i in range(REALS))
    temps = "".join(
        f"    {name}_temp_path {root}/{name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        "worker_processes 1;\nworker_rlimit_nofile 8192;\ndaemon off;\n"
        f"pid {root}/nginx.pid;\nerror_log {root}/error.log error;\n"
        "events { worker_connections 4096; }\n"
        "http {\n    access_log off;\n    keepalive_timeout 0;\n"
        f"{temps}    server {{\n{listens}"
        '        location = /ok.html { default_type text/html; return 200 "ok\\n"; }\n'
        "    }\n}\n"
    )


def healthd_config(logfile: Path) -> str:
    lines = ["checkinterval=2", "checktimeout=3", "quiescent=no", f'logfile="{logfile}"']
    for v in range(REALS // PER_VIRTUAL):
        lines.append(f"virtual=192.0.2.{v + 1}:80")
        lines += [f"    real={address(i)}:80 gate 1" for i in range(v * 10, v * 10 + 10)]
        lines += ["    service=http", '    request="ok.html"', '    receive="ok"']
    return "\n".join(lines) + "\n"


def reals_in_table(ns: Netns) -> int:
    text = ns.run(["cat", "/proc/net/ip_vs"]).stdout
    return sum(1 for line in text.splitlines()[3:] if line.startswith("  -> "))


def wait_listening(ns: Netns, proc: subprocess.Popen[bytes]) -> None:
    probe = f"import socket; socket.create_connection(({address(REALS - 1)!r}, 80), 2)"
    deadline = time.monotonic() + 60
    while ns.run([sys.executable, "-c", probe], check=False).returncode != 0:
        assert proc.poll() is None, "nginx exited"
        assert time.monotonic() < deadline, "nginx did not listen within 60 s"
        time.sleep(0.5)


def start(ns: Netns, argv: list[str], out: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with out.open("wb") as f:
        return subprocess.Popen(
            ns.argv(argv), stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=env
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_cold_start_puts_300_reals_in_the_table_within_the_bound(lab: Lab, workdir: Path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(nginx), "nginx is missing: scripts/bootstrap installs it"
    ns = lab.netns("start")
    (workdir / "nginx.conf").write_text(nginx_config(workdir))
    (workdir / "healthd.cf").write_text(healthd_config(workdir / "healthd.log"))
    env = dict(os.environ, HEALTHD_PIDDIR=str(workdir), HEALTHD_RUNDIR=str(workdir))
    env.pop("HEALTHD_DRIVER", None)
    server = start(ns, [nginx, "-c", str(workdir / "nginx.conf")], workdir / "nginx.out", env)
    try:
        wait_listening(ns, server)
        began = time.monotonic()
        argv = [sys.executable, "-m", "healthd", "-c", str(workdir / "healthd.cf")]
        daemon = start(ns, argv, workdir / "healthd.out", env)
        try:
            seen = 0
            while (took := time.monotonic() - began) < BOUND and seen < REALS:
                assert daemon.poll() is None, (workdir / "healthd.out").read_text()[-3000:]
                time.sleep(0.5)
                seen = reals_in_table(ns)
            log = (workdir / "healthd.log").read_text(errors="replace")
            downs = log.count('"real.down"')
            assert seen == REALS, f"{seen} of {REALS} reals after {took:.0f} s ({downs} downs)"
        finally:
            stop(daemon)
    finally:
        stop(server)
