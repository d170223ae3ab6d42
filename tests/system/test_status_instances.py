"""`status` of a daemon with execute= instances: real daemons on the in-memory table.

The parent starts its instances itself once it is up; status asks the parent's control
socket for the names and then each instance; its exit code is the parent's alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthd import pidfile
from tests.system._support import healthd, wait_for

pytestmark = pytest.mark.slow


def write(tmp_path: Path, name: str, *execute: Path) -> Path:
    path = tmp_path / name
    lines = [f"execute={e}\n" for e in execute]
    # checktype=on: no probe traffic at all; status is what is under test
    lines += [f'logfile="{tmp_path}/{name}.log"\n', "virtual=192.0.2.10:80\n"]
    lines += ["\treal=192.0.2.11:80 gate\n", "\tchecktype=on\n"]
    path.write_text("".join(lines))
    return path


def pid_of(tmp_path: Path, name: str) -> int | None:
    path = tmp_path / f"ldirectord.{name}.pid"
    pid = pidfile.read_pid(str(path)) if path.exists() else None
    return pid if pid is not None and pidfile.is_instance(pid) else None


def test_status_follows_every_execute_instance(tmp_path, env):
    a, b = write(tmp_path, "a.cf"), write(tmp_path, "b.cf")
    parent = write(tmp_path, "web.cf", a, b)
    started = healthd(env, str(parent), "start")
    assert started.returncode == 0, started.stderr
    try:
        wait_for(lambda: pid_of(tmp_path, "a.cf") and pid_of(tmp_path, "b.cf"))
        pids = [pid_of(tmp_path, n) for n in ("web.cf", "a.cf", "b.cf")]

        st = healthd(env, str(parent), "status")
        assert (st.returncode, st.stdout) == (0, "")
        assert st.stderr.splitlines() == [
            f"ldirectord for {cfg} is running with pid: {pid}"
            for cfg, pid in zip((parent, a, b), pids, strict=True)
        ]

        view = json.loads(healthd(env, str(parent), "status", "--format", "json").stdout)
        assert view["daemon"]["execute"] == [str(a), str(b)]
        children = view["instances"]
        assert [(c["config"], c["status"], c["pid"]) for c in children] == [
            (str(a), "running", pids[1]),
            (str(b), "running", pids[2]),
        ]
        assert children[0]["daemon"]["pid"] == pids[1]  # each instance's own view, nested

        assert healthd(env, str(b), "stop").returncode == 0
        st = healthd(env, str(parent), "status")
        assert st.returncode == 0  # the parent's code, as ldirectord's
        assert st.stdout == f"ldirectord is stopped for {b}\n"
        assert f"ldirectord for {a} is running with pid: {pids[1]}" in st.stderr
    finally:
        stopped = healthd(env, str(parent), "stop")
    assert stopped.returncode == 0
    wait_for(lambda: pid_of(tmp_path, "a.cf") is None)  # the parent stops its instances
    st = healthd(env, str(parent), "status")
    assert (st.returncode, st.stdout) == (3, f"ldirectord is stopped for {parent}\n")
