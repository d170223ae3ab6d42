"""sip check against a real SIP user agent server (sipp) over UDP and TCP."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from checks.base import CheckContext, Status
from checks.sip import SIPCheck, options_request
from tests.checks._support import make_target
from tests.checks.servers import free_port
from tests.checks.servers.sip import sipp_uas


def check(timeout: float = 5.0, **options: str) -> SIPCheck:
    return SIPCheck.from_options(options, CheckContext(timeout=timeout))


def test_request_carries_ldirectords_headers() -> None:
    text = options_request("ldirectord@lb1", "UDP", ("::1", 5062)).decode()
    lines = text.split("\r\n")
    assert lines[0] == "OPTIONS sip:ldirectord@lb1 SIP/2.0"
    assert lines[1].startswith("Via: SIP/2.0/UDP [::1]:5062;branch=z9hG4bK")
    assert "CSeq: 63104 OPTIONS" in lines
    assert "To: <sip:ldirectord@lb1>" in lines
    assert text.endswith("Content-Length: 0\r\n\r\n")


def test_login_defaults_to_ldirectord_at_hostname() -> None:
    assert check().login == f"ldirectord@{socket.gethostname()}"
    assert check(login="probe@example.org").login == "probe@example.org"


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
async def test_200_ok_is_up(host: str, tmp_path: Path, protocol: str) -> None:
    with sipp_uas(host, tmp_path, tcp=protocol == "tcp") as port:
        result = await check(login="probe@example.org").check(
            make_target(host, port, protocol=protocol)
        )
    assert result.status is Status.UP, result
    assert result.detail == "SIP/2.0 200 OK"


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
async def test_other_final_answer_is_down(host: str, tmp_path: Path, protocol: str) -> None:
    with sipp_uas(host, tmp_path, tcp=protocol == "tcp", status="404 Not Found") as port:
        result = await check().check(make_target(host, port, protocol=protocol))
    assert result.status is Status.DOWN
    assert result.reason == "status_mismatch"
    assert result.detail == "SIP/2.0 404 Not Found"


async def test_udp_closed_port_is_refused(host: str) -> None:
    port = free_port(host, socket.SOCK_DGRAM)
    result = await check().check(make_target(host, port, protocol="udp"))
    assert result.status is Status.DOWN
    assert result.reason == "refused"


async def test_tcp_refused(closed_port: int, host: str) -> None:
    result = await check().check(make_target(host, closed_port, protocol="tcp"))
    assert result.reason == "refused"


async def test_tcp_silent_server_times_out(silent_port: int, host: str) -> None:
    result = await check(0.2).check(make_target(host, silent_port, protocol="tcp"))
    assert result.status is Status.DOWN
    assert result.reason == "timeout"


async def test_udp_silent_server_times_out(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as silent:
        silent.bind((host, 0))
        target = make_target(host, silent.getsockname()[1], protocol="udp")
        result = await check(0.2).check(target)
    assert result.status is Status.DOWN
    assert result.reason == "timeout"
