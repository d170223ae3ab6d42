"""End to end on the host: the `healthd` command as a user runs it, on the in-memory table.

HEALTHD_DRIVER=fake replaces the kernel; everything else is real: processes, pid files,
signals, the control socket, and HTTP backends on loopback that the checks really reach.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system._support import DEADLINE, Backend, healthd, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    yield b
    b.close()


def config_text(tmp_path: Path, ports: list[int], extra: str = "") -> str:
    reals = "".join(f"\treal=127.0.0.1:{p} masq\n" for p in ports)
    return (
        f'checkinterval=1\nlogfile="{tmp_path}/healthd.log"\n'
        f"virtual=192.0.2.10:80\n{reals}\tservice=http\n"
        '\trequest="ok.html"\n\treceive="ok"\n\tchecktimeout=1\n\tquiescent=yes\n' + extra
    )


def reals(env: dict[str, str], cfg: Path) -> dict[str, dict[str, object]]:
    proc = healthd(env, str(cfg), "status", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    view = json.loads(proc.stdout)
    return {r["real"]: r for v in view["virtuals"] for r in v["reals"]}


def log_events(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "healthd.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_start_status_reload_stop(tmp_path, env, backend):
    cfg = tmp_path / "web.cf"
    monitor = tmp_path / "monitor.log"
    cfg.write_text(config_text(tmp_path, [backend.port], f'\tmonitorfile="{monitor}"\n'))
    pid_path = tmp_path / "ldirectord.web.cf.pid"
    real = f"127.0.0.1:{backend.port}"

    started = healthd(env, str(cfg), "start")
    assert (started.returncode, started.stdout, started.stderr) == (0, "", "")
    pid = int(pid_path.read_text())
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "ldirectord" in cmdline
        assert f"{cfg} start" in cmdline  # the OCF agent's pgrep -f pattern

        st = healthd(env, str(cfg), "status")
        assert st.returncode == 0
        assert st.stderr == f"ldirectord for {cfg} is running with pid: {pid}\n"
        assert st.stdout == ""

        again = healthd(env, str(cfg), "start")
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
        assert int(pid_path.read_text()) == pid

        up = wait_for(lambda: reals(env, cfg)[real]["up"] and reals(env, cfg)[real])
        assert up["kernel_weight"] == 1  # type: ignore[index]
        assert up["last"]["reason"] == "ok"  # type: ignore[index]
        assert f"127.0.0.1 {backend.port} 1 masq /ok.html ok [up]" in monitor.read_text()

        backend.failing = True
        wait_for(lambda: reals(env, cfg)[real]["up"] is False)
        down = reals(env, cfg)[real]
        assert down["kernel_weight"] == 0  # quiescent=yes
        assert down["last"]["reason"] != "ok"  # type: ignore[index]
        backend.failing = False
        wait_for(lambda: reals(env, cfg)[real]["kernel_weight"] == 1)

        # a broken file: the CLI refuses it, a direct HUP is logged, the daemon keeps going
        good = cfg.read_text()
        cfg.write_text(good + "\treal=127.0.0.1:1 gatee\n")
        bad = healthd(env, str(cfg), "reload")
        assert bad.returncode == 2
        assert "unknown forwarding method 'gatee'" in bad.stderr
        assert "^~~~~" in bad.stderr
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: any(e["event"] == "config.reload_failed" for e in log_events(tmp_path)))
        assert healthd(env, str(cfg), "status").returncode == 0
        assert pid_path.exists()
        assert reals(env, cfg)[real]["kernel_weight"] == 1

        # a valid change: one more real, the first keeps its health
        cfg.write_text(config_text(tmp_path, [backend.port, 1]))
        ok = healthd(env, str(cfg), "reload")
        assert (ok.returncode, ok.stderr) == (0, "")
        wait_for(lambda: "127.0.0.1:1" in reals(env, cfg))
        after = reals(env, cfg)
        assert after[real]["up"] is True
        assert after[real]["kernel_weight"] == 1
    finally:
        stopped = healthd(env, str(cfg), "stop")
    assert stopped.returncode == 0
    assert not _alive(pid)  # stop waits for the exit (a zombie awaits its reaper)
    assert not pid_path.exists()
    st = healthd(env, str(cfg), "status")
    assert (st.returncode, st.stdout) == (3, f"ldirectord is stopped for {cfg}\n")
    events = [e["event"] for e in log_events(tmp_path)]
    assert events.count("daemon.started") == 1
    assert events[-1] == "daemon.stopped"


def test_stale_pid_file(tmp_path, env, backend):
    cfg = tmp_path / "web.cf"
    cfg.write_text(config_text(tmp_path, [backend.port]))
    pid_path = tmp_path / "ldirectord.web.cf.pid"
    assert healthd(env, str(cfg), "start").returncode == 0
    pid = int(pid_path.read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _alive(pid))
    st = healthd(env, str(cfg), "status")
    assert st.returncode == 1
    assert st.stderr == f"ldirectord stale pid file {pid_path} for {cfg}\n"
    assert st.stdout == f"ldirectord is stopped for {cfg}\n"
    assert healthd(env, str(cfg), "stop").returncode == 0
    assert pid_path.exists()  # as ldirectord: stop leaves a stale file alone
    rl = healthd(env, str(cfg), "reload")
    assert (rl.returncode, rl.stdout) == (1, f"ldirectord is stopped for {cfg}\n")
    assert healthd(env, str(cfg), "try-restart").returncode == 0
    assert int(pid_path.read_text()) == pid  # try-restart did not start it


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_start_errors(tmp_path, env):
    missing = healthd(env, str(tmp_path / "absent.cf"), "start")
    assert missing.returncode == 1
    assert "absent.cf not found" in missing.stderr
    cfg = tmp_path / "bad.cf"
    cfg.write_text("checkinterval=1\nvirtual=192.0.2.10:80\n\treal=192.0.2.11:80 gatee\n")
    bad = healthd(env, str(cfg), "start")
    assert bad.returncode == 2
    assert f"{cfg}:3:" in bad.stderr
    assert "^~~~~" in bad.stderr
    assert not (tmp_path / "ldirectord.bad.cf.pid").exists()
    # the daemon fails after the fork: start reports its reason and exits 1
    good = tmp_path / "good.cf"
    good.write_text(config_text(tmp_path, [1]))
    failed = healthd({**env, "HEALTHD_DRIVER": "bogus"}, str(good), "start")
    assert failed.returncode == 1
    assert failed.stderr == "healthd: HEALTHD_DRIVER='bogus': expected 'netlink' or 'fake'\n"
    assert not (tmp_path / "ldirectord.good.cf.pid").exists()
    assert any(e["event"] == "daemon.start_failed" for e in log_events(tmp_path))


def test_foreground_notifies_systemd(tmp_path, env, backend):
    cfg = tmp_path / "web.cf"
    cfg.write_text(config_text(tmp_path, [backend.port]))
    notify = Path(env["HEALTHD_RUNDIR"]) / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(DEADLINE)
    env = {**env, "NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "400000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthd", "-c", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen: list[str] = []

        def expect(field: str) -> None:
            while not any(field in m for m in seen):
                seen.append(sock.recv(4096).decode())

        expect("READY=1")
        assert not (tmp_path / "ldirectord.web.cf.pid").exists()  # systemd tracks the pid
        st = healthd(env, "-c", str(cfg), "status")  # found through the control socket
        assert st.stderr == f"ldirectord for {cfg} is running with pid: {proc.pid}\n"
        # another name for the same file reaches the same daemon, and start adds none
        st = healthd(env, "web.cf", "status", cwd=tmp_path)
        assert (st.returncode, st.stderr) == (
            0,
            f"ldirectord for {cfg} is running with pid: {proc.pid}\n",
        )
        again = healthd(env, "web.cf", "start", cwd=tmp_path)
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
        assert not (tmp_path / "ldirectord.web.cf.pid").exists()
        expect("WATCHDOG=1")
        proc.send_signal(signal.SIGHUP)
        expect("RELOADING=1")
        seen.clear()
        expect("READY=1")
        proc.send_signal(signal.SIGTERM)
        expect("STOPPING=1")
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        sock.close()


def test_supervised_start_stays_in_the_foreground(tmp_path, env, backend):
    cfg = tmp_path / "sup.cf"
    cfg.write_text("supervised=yes\n" + config_text(tmp_path, [backend.port]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthd", str(cfg), "start"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: healthd(env, str(cfg), "status").returncode == 0)
        assert proc.poll() is None  # not daemonized: the started process is the daemon
        st = healthd(env, str(cfg), "status")
        assert st.stderr == f"ldirectord for {cfg} is running with pid: {proc.pid}\n"
        assert not (tmp_path / "ldirectord.sup.cf.pid").exists()  # as ldirectord: none
        assert not (tmp_path / "healthd.log").exists()  # logs go to the standard streams
        assert healthd(env, str(cfg), "stop").returncode == 0
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_restart_and_try_restart(tmp_path, env, backend):
    cfg = tmp_path / "web.cf"
    good = config_text(tmp_path, [backend.port])
    cfg.write_text(good)
    pid_path = tmp_path / "ldirectord.web.cf.pid"
    assert healthd(env, str(cfg), "start").returncode == 0
    first = int(pid_path.read_text())
    try:
        cfg.write_text(good + "\treal=127.0.0.1:1 gatee\n")
        refused = healthd(env, str(cfg), "restart")
        assert refused.returncode == 2  # checked before stopping anything
        assert int(pid_path.read_text()) == first
        assert _alive(first)
        cfg.write_text(good)
        assert healthd(env, str(cfg), "restart").returncode == 0
        second = int(pid_path.read_text())
        assert second != first
        assert not _alive(first)
        assert healthd(env, str(cfg), "try-restart").returncode == 0
        third = int(pid_path.read_text())
        assert third not in (first, second)
        assert healthd(env, str(cfg), "status").returncode == 0
    finally:
        assert healthd(env, str(cfg), "stop").returncode == 0
    assert healthd(env, str(cfg), "status").returncode == 3


def test_debug_stays_in_front_with_debug_lines_and_answers_force_reload(tmp_path, env, backend):
    cfg = tmp_path / "dbg.cf"
    cfg.write_text(config_text(tmp_path, [backend.port]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthd", "-d", str(cfg), "start"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: healthd(env, str(cfg), "status").returncode == 0)
        assert proc.poll() is None  # -d: the started process is the daemon, in the foreground
        st = healthd(env, str(cfg), "status")
        assert st.stderr == f"ldirectord for {cfg} is running with pid: {proc.pid}\n"
        assert not (tmp_path / "ldirectord.dbg.cf.pid").exists()  # as ldirectord -d: none
        wait_for(lambda: reals(env, cfg)[f"127.0.0.1:{backend.port}"]["up"])
        assert healthd(env, str(cfg), "force-reload").returncode == 0  # HUP, as reload
        wait_for(lambda: _reloads(env, cfg) == 1)
        assert healthd(env, str(cfg), "stop").returncode == 0
        assert proc.wait(timeout=DEADLINE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stderr.close()
    assert not (tmp_path / "healthd.log").exists()  # -d ignores logfile=, as ldirectord
    # readable console lines on stderr, at debug level: every check result is there
    results = [line for line in err.splitlines() if "check.result" in line]
    assert results, err
    assert all("[debug" in line for line in results)
    assert f"real=127.0.0.1:{backend.port}" in results[0]
    assert not err.lstrip().startswith("{")  # not JSON
    assert "daemon.reloading" in err
    assert "trigger=signal" in err


def _reloads(env: dict[str, str], cfg: Path) -> object:
    proc = healthd(env, str(cfg), "status", "--format", "json")
    return json.loads(proc.stdout).get("daemon", {}).get("reloads")
