"""Event names are a closed, well-formed list; configure() sends logs where `logfile=` says."""

from __future__ import annotations

import ast
import json
import logging
import logging.handlers
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from healthd import logs

EVENT = re.compile(r"^[a-z]+(\.[a-z_]+)+$")
ROOT = Path(__file__).resolve().parents[2]
LEVELS = {"debug", "info", "warning", "error", "exception", "critical", "msg"}
LOGGERS = {"log", "logger", "bound"}  # the names healthd gives its structlog loggers
# every healthd module: each event it logs must be one of logs.EVENTS
CLOSED = sorted(
    str(p.relative_to(ROOT / "healthd").with_suffix("")) for p in (ROOT / "healthd").rglob("*.py")
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    root = logging.getLogger("healthd")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.propagate = True
    structlog.reset_defaults()


def logged_events(path: Path) -> list[tuple[int, str]]:
    """Return (line, event) for every log call in `path` whose event is a string literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in LEVELS or not node.args:
            continue
        receiver = node.func.value
        if not (isinstance(receiver, ast.Name) and receiver.id in LOGGERS):
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append((node.lineno, first.value))
        elif (
            isinstance(first, ast.Attribute)
            and isinstance(first.value, ast.Name)
            and first.value.id == "logs"
        ):
            found.append((node.lineno, getattr(logs, first.attr)))
    return found


def test_every_event_constant_is_well_formed():
    assert logs.EVENTS
    for event in logs.EVENTS:
        assert EVENT.match(event), event
    for name in ("REAL_DOWN", "CHECK_RESULT", "IPVS_APPLY_FAILED", "HOOK_FAILED"):
        assert getattr(logs, name) in logs.EVENTS


def test_healthd_logs_only_listed_events():
    for module in CLOSED:
        path = ROOT / "healthd" / f"{module}.py"
        for line, event in logged_events(path):
            assert event in logs.EVENTS, f"{path}:{line}: {event!r} is not in healthd.logs"


def test_every_literal_event_in_healthd_is_well_formed():
    files = list((ROOT / "healthd").rglob("*.py"))
    checked = 0
    for path in files:
        for line, event in logged_events(path):
            checked += 1
            assert EVENT.match(event), f"{path}:{line}: bad event name {event!r}"
    assert checked > 10


def test_the_literal_scan_sees_calls():
    source = 'log.info("real.down", x=1)\nlog.debug(logs.CHECK_RESULT)\nprint("x")\n'
    tree_file = ROOT / "tests" / "unit" / "_probe_source.py"
    try:
        tree_file.write_text(source)
        assert logged_events(tree_file) == [(1, "real.down"), (2, "check.result")]
    finally:
        tree_file.unlink()


def test_logfile_path_writes_json_lines(tmp_path):
    path = tmp_path / "healthd.log"
    logs.configure(False, str(path))
    log = logs.get_logger("healthd.test")
    log.debug(logs.CHECK_RESULT, real="198.51.100.1:80")  # below info: dropped
    log.info(logs.REAL_DOWN, virtual="tcp/192.0.2.10:80", real="198.51.100.1:80", failures=3)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception(logs.CHECK_CRASHED)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["event"] == "real.down"
    assert first["level"] == "info"
    assert first["failures"] == 3
    assert "timestamp" in first
    second = json.loads(lines[1])
    assert "ValueError: boom" in second["exception"]


def test_debug_gives_console_lines_on_stderr_and_ignores_logfile(tmp_path, capsys):
    path = tmp_path / "unused.log"
    logs.configure(True, str(path))
    logs.get_logger().debug(logs.CHECK_RESULT, real="198.51.100.1:80", reason="ok")
    err = capsys.readouterr().err
    assert "check.result" in err
    assert "real=198.51.100.1:80" in err
    assert not path.exists()


def test_no_logfile_and_no_terminal_gives_json_on_stdout(capsys):
    logs.configure(False, None, json=True)
    logs.get_logger().info(logs.FALLBACK_ON, virtual="fwm/5")
    out = capsys.readouterr().out
    assert json.loads(out)["event"] == "fallback.on"


def test_facility_goes_to_syslog_or_falls_back_with_a_warning(capsys):
    logs.configure(False, "local0")
    handler = logging.getLogger("healthd").handlers[0]
    if isinstance(handler, logging.handlers.SysLogHandler):
        assert handler.facility == logging.handlers.SysLogHandler.LOG_LOCAL0
    else:
        assert "log.syslog_unavailable" in capsys.readouterr().err


def test_facility_lines_reach_the_syslog_socket(tmp_path):
    # a stand-in for the syslog daemon: a datagram socket where /dev/log would be
    path = str(tmp_path / "log")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as daemon:
        daemon.bind(path)
        daemon.settimeout(1)
        logs.configure(False, "local0", syslog_socket=path)
        log = logs.get_logger("healthd.test")
        log.debug(logs.CHECK_RESULT, real="198.51.100.1:80")  # below info: not sent
        log.info(logs.REAL_DOWN, virtual="tcp/192.0.2.10:80", real="198.51.100.1:80", failures=3)
        log.error(logs.IPVS_APPLY_FAILED, op="add-dest", errno=1)
        first = daemon.recv(4096).decode()
        second = daemon.recv(4096).decode()
    # <facility * 8 + severity>: local0 is 16; info is 6, error 3
    assert first.startswith(f"<134>healthd[{os.getpid()}]: event=real.down ")
    assert "virtual=tcp/192.0.2.10:80" in first
    assert "real=198.51.100.1:80" in first
    assert "failures=3" in first
    assert second.startswith(f"<131>healthd[{os.getpid()}]: event=ipvs.apply_failed ")


def _syslog_daemon(path: str) -> socket.socket:
    """Bind a datagram socket at path, standing in for the syslog daemon's /dev/log."""
    daemon = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    daemon.bind(path)
    daemon.settimeout(1)
    return daemon


def test_a_restarted_syslog_gets_the_next_line(tmp_path, capsys):
    path = str(tmp_path / "log")
    with _syslog_daemon(path) as first:
        logs.configure(False, "local0", syslog_socket=path)
        log = logs.get_logger("healthd.test")
        log.info(logs.REAL_UP, real="198.51.100.1:80")
        assert "event=real.up " in first.recv(4096).decode()
    os.unlink(path)
    with _syslog_daemon(path) as second:  # syslog restarted: a new socket at the same path
        log.info(logs.REAL_DOWN, real="198.51.100.1:80")
        assert "event=real.down " in second.recv(4096).decode()
    assert capsys.readouterr().err == ""


def test_syslog_going_away_is_reported_once_and_lines_flow_when_it_is_back(tmp_path, capsys):
    path = str(tmp_path / "log")
    with _syslog_daemon(path) as first:
        logs.configure(False, "local0", syslog_socket=path)
        log = logs.get_logger("healthd.test")
        log.info(logs.REAL_UP, real="198.51.100.1:80")
        assert "event=real.up " in first.recv(4096).decode()
    os.unlink(path)
    for n in range(3):
        log.info(logs.REAL_DOWN, real=f"198.51.100.{n}:80")  # never raises
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith(f"healthd: syslog at {path} is unavailable")
    assert "No such file or directory" in err
    with _syslog_daemon(path) as second:
        log.warning(logs.IPVS_APPLY_FAILED, op="add-dest")
        line = second.recv(4096).decode()
        assert line.startswith(f"<132>healthd[{os.getpid()}]: event=ipvs.apply_failed ")
    err = capsys.readouterr().err
    assert err == f"healthd: syslog at {path} is back; 3 log lines were lost\n"
    # a second outage is reported again
    os.unlink(path)
    log.info(logs.REAL_UP, real="198.51.100.1:80")
    assert capsys.readouterr().err.startswith(f"healthd: syslog at {path} is unavailable")


def test_an_unwritable_logfile_falls_back_to_stderr(tmp_path, capsys):
    logs.configure(False, str(tmp_path / "missing-dir" / "healthd.log"))
    logs.get_logger().info(logs.REAL_UP, real="198.51.100.1:80")
    err = capsys.readouterr().err
    assert "log.file_unavailable" in err
    assert "No such file or directory" in err  # the reason, not only the fact
    assert "real.up" in err


def test_an_absent_syslog_socket_falls_back_with_the_reason(tmp_path, capsys):
    logs.configure(False, "local0", syslog_socket=str(tmp_path / "no-log"))
    assert type(logging.getLogger("healthd").handlers[0]) is logging.StreamHandler
    err = capsys.readouterr().err
    assert "log.syslog_unavailable" in err
    assert "No such file or directory" in err


def test_is_syslog():
    assert logs.is_syslog("local0")
    assert logs.is_syslog("daemon")
    assert not logs.is_syslog("/var/log/ldirectord.log")
    assert not logs.is_syslog(None)
    assert "local7" in logs.SYSLOG_FACILITIES
