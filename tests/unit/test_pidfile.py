"""ldirectord's pid-file names and liveness rule, against real processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from healthd import pidfile
from healthd.pidfile import State
from tests.unit._procs import dead_pid, spawn_marked


@pytest.mark.parametrize(
    ("arg", "name"),
    [
        (None, "ldirectord"),
        ("ldirectord.cf", "ldirectord.cf"),
        ("/etc/ha.d/web.cf", "web.cf"),
        ("conf/x", "x"),
    ],
)
def test_cfgname(arg, name):
    assert pidfile.cfgname(arg) == name


def test_pidfile_path_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv(pidfile.PIDDIR_ENV, str(tmp_path))
    assert pidfile.pidfile_path("/etc/ha.d/web.cf") == str(tmp_path / "ldirectord.web.cf.pid")
    monkeypatch.delenv(pidfile.PIDDIR_ENV)
    assert pidfile.pidfile_path(None) == "/run/ldirectord.ldirectord.pid"


def test_absent_file_is_stopped(tmp_path):
    assert pidfile.check(str(tmp_path / "x.pid")).state is State.STOPPED


def test_dead_pid_is_stale(tmp_path):
    pid = dead_pid()
    path = str(tmp_path / "x.pid")
    pidfile.write(path, pid)
    st = pidfile.check(path)
    assert st.state is State.STALE
    assert st.pid == pid


def test_live_process_without_marker_is_stale(tmp_path):
    path = str(tmp_path / "x.pid")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as proc:
        try:
            pidfile.write(path, proc.pid)
            assert pidfile.check(path).state is State.STALE
        finally:
            proc.kill()


def test_live_process_with_marker_is_running(tmp_path):
    path = str(tmp_path / "x.pid")
    with spawn_marked() as proc:
        try:
            pidfile.write(path, proc.pid)
            st = pidfile.check(path)
            assert st.state is State.RUNNING
            assert st.pid == proc.pid
        finally:
            proc.kill()


def test_garbage_is_stale(tmp_path):
    path = tmp_path / "x.pid"
    path.write_text("not a pid\n")
    assert pidfile.check(str(path)) == pidfile.PidStatus(State.STALE, str(path), None)


def test_write_and_remove_only_own_pid(tmp_path):
    path = str(tmp_path / "x.pid")
    pidfile.write(path)
    with open(path) as f:
        assert f.read() == f"{os.getpid()}\n"
    assert pidfile.remove(path, os.getpid() + 1) is False
    assert os.path.exists(path)
    assert pidfile.remove(path) is True
    assert not os.path.exists(path)
    assert pidfile.remove(path) is False


def test_failed_write_raises_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "x.pid"
    (path / "occupied").mkdir(parents=True)  # a non-empty directory: the final rename fails
    with pytest.raises(IsADirectoryError):
        pidfile.write(str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pid"]
