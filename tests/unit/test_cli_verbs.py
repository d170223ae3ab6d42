"""The command line as ldirectord's users type it, and the verbs that need no running daemon."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from healthd import app, cli, marker, pidfile
from healthd.commands import common, stop
from tests.unit._procs import dead_pid, spawn_marked


@pytest.mark.parametrize(
    ("argv", "verb", "config", "debug"),
    [
        (["start"], "start", None, False),
        (["/etc/ha.d/web.cf", "start"], "start", "/etc/ha.d/web.cf", False),
        (["-d", "web.cf", "stop"], "stop", "web.cf", True),
        (["-c", "/etc/ha.d/web.cf"], "run", "/etc/ha.d/web.cf", False),
        (["--", "web.cf", "force-reload"], "force-reload", "web.cf", False),
        (["web.cf", "try-restart"], "try-restart", "web.cf", False),
        (["-c", "x.cf", "status", "--format", "json"], "status", "x.cf", False),
    ],
)
def test_parse_ldirectord_forms(argv, verb, config, debug):
    ns = cli.parse(argv)
    assert (ns.verb, ns.config_arg, ns.debug) == (verb, config, debug)


def test_routes_point_at_existing_functions():
    for verb in cli.COMMANDS:
        module, _, func = cli.COMMANDS[verb].partition(":")
        assert module.startswith("healthd.commands.")
        assert callable(getattr(importlib.import_module(module), func))


def test_unknown_verb_is_usage_255(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse(["web.cf", "bogus"])
    assert exc.value.code == 255


@pytest.fixture
def piddir(tmp_path, monkeypatch):
    monkeypatch.setenv(pidfile.PIDDIR_ENV, str(tmp_path))
    monkeypatch.setenv("HEALTHD_RUNDIR", str(tmp_path / "run"))
    cfg = tmp_path / "web.cf"
    cfg.write_text("virtual=192.0.2.10:80\n\treal=192.0.2.11:80 gate\n")
    return tmp_path, cfg


def test_status_stopped(piddir, capsys):
    _, cfg = piddir
    assert cli.main([str(cfg), "status"]) == 3
    out, err = capsys.readouterr()
    assert (out, err) == (f"ldirectord is stopped for {cfg}\n", "")


def test_status_stopped_json_keeps_stdout_parseable(piddir, capsys):
    import json

    _, cfg = piddir
    assert cli.main([str(cfg), "status", "--format", "json"]) == 3
    out, err = capsys.readouterr()
    assert json.loads(out) == {"config": str(cfg), "status": "stopped", "pid": None}
    assert err == f"ldirectord is stopped for {cfg}\n"


def test_status_stale(piddir, capsys):
    tmp, cfg = piddir
    pid_path = tmp / "ldirectord.web.cf.pid"
    pid_path.write_text(f"{dead_pid()}\n")
    assert cli.main([str(cfg), "status"]) == 1
    out, err = capsys.readouterr()
    assert out == f"ldirectord is stopped for {cfg}\n"
    assert err == f"ldirectord stale pid file {pid_path} for {cfg}\n"


def test_stop_when_stopped_is_0(piddir, capsys):
    _, cfg = piddir
    assert cli.main([str(cfg), "stop"]) == 0
    assert capsys.readouterr() == ("", "")


def test_reload_when_stopped_is_1(piddir, capsys):
    _, cfg = piddir
    assert cli.main([str(cfg), "reload"]) == 1
    assert capsys.readouterr().out == f"ldirectord is stopped for {cfg}\n"


def test_try_restart_when_stopped_is_0(piddir):
    _, cfg = piddir
    assert cli.main([str(cfg), "try-restart"]) == 0


def test_config_not_found_is_1(piddir, capsys):
    tmp, _ = piddir
    assert cli.main([str(tmp / "absent.cf"), "status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("healthd: config file ")
    assert "absent.cf not found" in err


def test_broken_config_does_not_touch_a_live_pid_file(piddir, capsys):
    tmp, cfg = piddir
    cfg.write_text("virtual=192.0.2.10:80\n\treal=192.0.2.11:80 gatee\n")
    with spawn_marked() as proc:
        try:
            pid_path = tmp / "ldirectord.web.cf.pid"
            pid_path.write_text(f"{proc.pid}\n")
            assert cli.main([str(cfg), "status"]) == 0
            assert cli.main([str(cfg), "reload"]) == 2  # refused before any signal
            assert "gatee" in capsys.readouterr().err
            assert proc.poll() is None
            assert pid_path.read_text() == f"{proc.pid}\n"
        finally:
            proc.kill()


def test_stop_waits_for_the_process(piddir):
    tmp, cfg = piddir
    with spawn_marked() as proc:
        (tmp / "ldirectord.web.cf.pid").write_text(f"{proc.pid}\n")
        assert cli.main([str(cfg), "stop"]) == 0
        # TERM delivered; stop returned once the process was no longer an instance
        assert proc.wait(timeout=1) == -15


def test_restart_refuses_to_report_success_while_the_old_daemon_runs(piddir, capsys, monkeypatch):
    # an old daemon that outlives STOP_WAIT: start would find it running and exit 0 with
    # the old configuration in force, so restart says so and exits 1 instead
    tmp, cfg = piddir
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    code += "print('ready', flush=True); time.sleep(30)"
    argv = [sys.executable, "-X", "ldirectord-compatible", "-c", code]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n"
            (tmp / "ldirectord.web.cf.pid").write_text(f"{proc.pid}\n")
            monkeypatch.setattr(stop, "STOP_WAIT", 0.2)
            assert cli.main(["-d", str(cfg), "restart"]) == 1  # -d: no re-exec for the marker
            err = capsys.readouterr().err
            assert f"healthd: pid {proc.pid} still running 0.2s after TERM\n" in err
            assert err.endswith(f"not restarted: the old daemon for {cfg} is still running\n")
            assert proc.poll() is None
            assert cli.main([str(cfg), "stop"]) == 0  # stop keeps ldirectord's exit 0
        finally:
            proc.kill()


@pytest.mark.parametrize(("verb", "sig"), [("stop", "SIGTERM"), ("reload", "SIGHUP")])
def test_a_refused_signal_is_one_line_and_exit_1(piddir, capsys, monkeypatch, verb, sig):
    # a non-root user signalling root's daemon: EPERM, stated plainly, never a traceback
    tmp, cfg = piddir
    with spawn_marked() as proc:
        try:
            (tmp / "ldirectord.web.cf.pid").write_text(f"{proc.pid}\n")

            def refuse(pid: int, signum: int) -> None:
                raise PermissionError(1, "Operation not permitted")

            monkeypatch.setattr(common.os, "kill", refuse)
            assert cli.main([str(cfg), verb]) == 1
            err = capsys.readouterr().err
            assert err.endswith(
                f"healthd: cannot send {sig} to pid {proc.pid}: Operation not permitted\n"
            )
            assert proc.poll() is None
        finally:
            monkeypatch.undo()
            proc.kill()


def test_unknown_driver_is_a_clear_error(monkeypatch):
    import asyncio

    from healthd.errors import HealthdError

    monkeypatch.setenv(app.DRIVER_ENV, "bogus")
    with pytest.raises(HealthdError, match="expected 'netlink' or 'fake'"):
        asyncio.run(app.open_driver())


@pytest.mark.parametrize(
    "argv",
    [
        ["-c", "x.cf", "dump", "--format", "xml"],
        ["--bogus", "start"],
        ["-t", "x.cf", "dump"],
        ["-c", "x.cf", "y.cf", "status"],
    ],
)
def test_usage_errors_exit_255_never_2(argv, capsys):
    # 2 is a configuration error (the OCF agent reads it so); ldirectord's usage exit is 255
    with pytest.raises(SystemExit) as exc:
        cli.parse(argv)
    assert exc.value.code == 255
    assert capsys.readouterr().err.strip() != ""


HEALTHD = str(Path(sys.executable).with_name("healthd"))  # the installed console script


def test_console_script_version():
    from healthd import __version__

    done = subprocess.run([HEALTHD, "--version"], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, f"healthd {__version__}\n")


def test_console_script_help_names_the_options_and_verbs():
    done = subprocess.run([HEALTHD, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    for word in ("-c CONFIG", "-t, --config-test", "--version", "configtest", "dump", "status"):
        assert word in done.stdout


def test_console_script_positional_config_and_verb(tmp_path):
    cfg = tmp_path / "web.cf"
    cfg.write_text("virtual=192.0.2.10:80\n\treal=192.0.2.11:80 gate\n")
    done = subprocess.run(
        [HEALTHD, str(cfg), "configtest"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout) == (
        0,
        f"{cfg}: configuration OK (1 virtual service, 1 real server)\n",
    )


@pytest.mark.parametrize(
    ("argv", "early"),
    [
        (["-c", "web.cf"], True),
        (["web.cf", "start"], True),
        (["--config", "web.cf", "restart"], True),
        (["start"], True),
        ([], True),
        (["-d", "-c", "web.cf"], False),  # -d never re-execs
        (["-c", "web.cf", "configtest"], False),
        (["web.cf", "status", "--format", "json"], False),
        (["web.cf", "try-restart"], False),  # left to restart, once it knows it runs
        (["-t", "-c", "web.cf"], False),
    ],
)
def test_the_marker_re_exec_happens_before_argparse_only_for_plain_runs(argv, early, monkeypatch):
    calls = []
    monkeypatch.setattr(marker, "ensure", lambda: calls.append(True))
    cli._mark_early(argv)
    assert calls == ([True] if early else [])
