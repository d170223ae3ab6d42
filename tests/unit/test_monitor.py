"""The monitorfile: ldirectord's line format (§11.4) and the appending listener."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from checks.base import Result
from healthd.model import CheckSpec, CheckType, Forward, Proto, Real, ServiceName, Virtual
from healthd.monitor import MonitorFile, escape, monitor_line, real_id

# Sat Nov 21 07:45:17 2026 UTC
WHEN = 1795247117.0


@pytest.fixture
def utc() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def http_virtual(monitorfile: str | None = None, **spec: object) -> Virtual:
    check = CheckSpec(
        checktype=CheckType.NEGOTIATE,
        service=ServiceName("http"),
        request="/index.html",
        receive="Test Page",
        **spec,  # type: ignore[arg-type]
    )
    return Virtual(Proto.TCP, ip_address("192.0.2.10"), 80, check=check, monitorfile=monitorfile)


def real(addr: str = "127.0.0.2", weight: int = 2, **kw: object) -> Real:
    return Real(ip_address(addr), 80, Forward.GATE, weight, **kw)  # type: ignore[arg-type]


def test_line_matches_ldirectords_observed_output(utc: None) -> None:
    line = monitor_line(http_virtual(), real(), Result.ok("200 OK"), WHEN, 12783)
    assert line == (
        "[Sat Nov 21 07:45:17 2026] [12783] negotiate http tcp 127.0.0.2 80 2 gate "
        "/index.html Test Page [up] 200 OK\n"
    )


def test_down_line_escapes_the_message(utc: None) -> None:
    result = Result.down("refused", "Can't connect | 100%\r\nreally")
    line = monitor_line(http_virtual(), real("127.0.0.3", 1), result, WHEN, 7)
    assert line.endswith("[down] Can't connect %7c 100%25%0d%0areally\n")
    assert line.count("\n") == 1


def test_empty_message_is_a_dash_or_the_reason() -> None:
    assert escape("") == "-"
    line = monitor_line(http_virtual(), real(), Result.down("timeout"), WHEN, 1)
    assert line.endswith("[down] timeout\n")


def test_real_id_squeezes_colons_and_drops_backslashes() -> None:
    virtual = http_virtual(virtualhost="www.example.com", checkport=8080)
    r = real("2001:db8::2", 1, request="/a\\b:c", receive="ok")
    assert real_id(virtual, r) == (
        "negotiate http tcp [2001 db8 2] 80 www.example.com 8080 1 gate /ab c ok"
    )


def test_real_id_for_external_and_connect_checks() -> None:
    external = CheckSpec(checktype=CheckType.EXTERNAL, checkcommand="/usr/local/bin/probe")
    v = Virtual(Proto.UDP, ip_address("192.0.2.10"), 53, check=external)
    assert real_id(v, real()).startswith("external /usr/local/bin/probe udp 127.0.0.2 80 2 gate")
    connect = Virtual(Proto.FWM, None, 0, fwmark=5, check=CheckSpec(CheckType.CONNECT))
    assert real_id(connect, real()) == "connect fwm 127.0.0.2 80 2 gate / "


async def test_listener_appends_one_line_per_result(tmp_path: Path, utc: None) -> None:
    path = tmp_path / "monitor.log"
    path.write_text("earlier line\n")
    monitor = MonitorFile(now=lambda: WHEN, pid=lambda: 42)
    virtual = http_virtual(str(path))
    await monitor.on_result(virtual, real(), Result.ok("200 OK"))
    await monitor.on_result(virtual, real(), Result.down("status_mismatch", "got 503"))
    lines = path.read_text().splitlines()
    assert lines[0] == "earlier line"
    assert lines[1].startswith("[Sat Nov 21 07:45:17 2026] [42] negotiate http tcp 127.0.0.2")
    assert lines[1].endswith("[up] 200 OK")
    assert lines[2].endswith("[down] got 503")
    assert len(lines) == 3


async def test_listener_without_monitorfile_writes_nothing(tmp_path: Path) -> None:
    await MonitorFile().on_result(http_virtual(None), real(), Result.ok())
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240


async def test_write_failure_is_logged_once_not_raised(tmp_path: Path) -> None:
    virtual = http_virtual(str(tmp_path / "missing-dir" / "monitor.log"))
    monitor = MonitorFile()
    with capture_logs() as captured:
        await monitor.on_result(virtual, real(), Result.ok())
        await monitor.on_result(virtual, real(), Result.ok())
    failures = [e for e in captured if e["event"] == "hook.failed"]
    assert len(failures) == 1
    assert failures[0]["hook"] == "monitorfile"
