"""File descriptors running out: healthd under a low RLIMIT_NOFILE logs, keeps every real
and recovers once descriptors are back, without a restart.

A foreground daemon (`python -m healthd -c FILE`, the in-memory table) checks 40 HTTP
reals on a loopback server that takes half a second to answer, so about 20 checks are in
flight at once; its soft and hard RLIMIT_NOFILE are set a few descriptors above what it
needs at rest, so most checks cannot open their socket (EMFILE). Then the server answers at
once again: fewer checks are in flight, descriptors suffice, and the same process recovers.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from tests.system._support import Backend, healthd, wait_for

REALS = 40


def config(tmp: Path, port: int) -> Path:
    lines = ["checkinterval=1", "checktimeout=3", "quiescent=yes", f'logfile="{tmp}/hd.log"', ""]
    for v in range(REALS):  # one check each: the request differs
        lines += [f"virtual=192.0.2.{v + 1}:80", f"\treal=127.0.0.1:{port} masq 1",
                  "\tservice=http", f'\trequest="ok.html?v={v}"', '\treceive="ok"', ""]  # fmt: skip
    path = tmp / "fd.cf"
    path.write_text("\n".join(lines))
    return path


def events(tmp: Path, name: str) -> list[dict[str, object]]:
    log = tmp / "hd.log"
    if not log.exists():
        return []
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def start(cfg: Path, env: dict[str, str], limit: int | None) -> subprocess.Popen[bytes]:
    def lower() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return subprocess.Popen(
        [sys.executable, "-m", "healthd", "-c", str(cfg)],
        env=env,
        preexec_fn=lower,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def status(cfg: Path, env: dict[str, str]) -> list[dict[str, object]]:
    done = healthd(env, "-c", str(cfg), "status", "--format", "json")
    if done.returncode != 0:
        return []
    view = json.loads(done.stdout)
    return [r for v in view.get("virtuals", []) for r in v["reals"]]


def test_healthd_degrades_and_recovers_when_descriptors_run_out(tmp_path):
    backend = Backend(delay=0.5)
    env = dict(os.environ, HEALTHD_DRIVER="fake", HEALTHD_RUNDIR=str(tmp_path),
               HEALTHD_PIDDIR=str(tmp_path))  # fmt: skip
    env.pop("NOTIFY_SOCKET", None)
    cfg = config(tmp_path, backend.port)
    try:
        # what the daemon holds at rest, all reals up
        free = start(cfg, env, None)
        wait_for(lambda: len(events(tmp_path, "real.up")) == REALS)
        rest = min(fds(free.pid) for _ in range(20) if time.sleep(0.05) is None)
        assert stop(free) == 0
        (tmp_path / "hd.log").unlink()

        limited = start(cfg, env, rest + 4)
        wait_for(lambda: events(tmp_path, "check.local_error"), deadline=30)
        time.sleep(3)  # a few rounds short of descriptors
        assert limited.poll() is None  # still running
        warned = events(tmp_path, "check.local_error")
        assert all("Too many open files" in str(e["detail"]) for e in warned), warned[:3]
        assert events(tmp_path, "real.down") == []  # no real taken out for healthd's shortage
        assert events(tmp_path, "daemon.crashed") == []

        backend.delay = 0.0  # the shortage ends: checks are quick, few in flight at once
        reals = wait_for(lambda: (r := status(cfg, env)) and all(
            x["up"] and x["local_errors"] == 0 for x in r) and r, deadline=30)  # fmt: skip
        assert len(reals) == REALS  # type: ignore[arg-type]
        assert events(tmp_path, "real.down") == []
        assert len(events(tmp_path, "daemon.started")) == 1  # recovered without a restart
        assert stop(limited) == 0
    finally:
        backend.close()
