"""simpletcp check against real services: socat echo (TCP and UDP) and JamNNTPd."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.base import CheckContext, Status
from checks.simpletcp import SimpleTCPCheck, unescape
from tests.checks._support import make_target
from tests.checks.servers import free_port
from tests.checks.servers.nntp import jamnntpd
from tests.checks.servers.socat import echo_server


@pytest.fixture
def tcp_echo(host: str, tmp_path: Path) -> Iterator[int]:
    with echo_server(host, tmp_path) as port:
        yield port


@pytest.fixture
def udp_echo(host: str, tmp_path: Path) -> Iterator[int]:
    with echo_server(host, tmp_path, udp=True) as port:
        yield port


def check(timeout: float = 5.0, **options: str) -> SimpleTCPCheck:
    return SimpleTCPCheck.from_options(options, CheckContext(timeout=timeout))


def test_request_escapes_and_leading_slash() -> None:
    # ldirectord: substr($request, 1), then s/\\n/\n/g
    assert unescape("/PING\\nstatus\\n") == "PING\nstatus\n"
    assert unescape("HELLO") == "HELLO"


async def test_echo_matching_line_is_up(host: str, tcp_echo: int) -> None:
    result = await check(request="/PING\\nstatus ok\\n", receive="^status ok$").check(
        make_target(host, tcp_echo)
    )
    assert result.status is Status.UP, result
    assert result.detail == "status ok"


async def test_echo_without_match_is_down(host: str, tcp_echo: int) -> None:
    result = await check(request="/PING\\n", receive="^PONG").check(make_target(host, tcp_echo))
    assert result.status is Status.DOWN
    assert result.reason == "body_mismatch"


async def test_empty_receive_needs_a_connection(host: str, tcp_echo: int, closed_port: int) -> None:
    # ldirectord: an empty receive may report a dead server up; healthd needs the connect
    assert (await check(request="/x").check(make_target(host, tcp_echo))).up
    result = await check(request="/x").check(make_target(host, closed_port))
    assert result.reason == "refused"


async def test_real_nntp_server(tmp_path: Path) -> None:
    with jamnntpd(tmp_path) as port:
        target = make_target("127.0.0.1", port)
        up = await check(request="/LIST\\nQUIT\\n", receive=r"^test\.group ").check(target)
        down = await check(request="/QUIT\\n", receive="^200 Welcome to INN").check(target)
    assert up.status is Status.UP, up
    assert down.reason == "body_mismatch"


async def test_udp_echo(host: str, udp_echo: int) -> None:
    target = make_target(host, udp_echo, protocol="udp")
    up = await check(request="/PING\\nPONG\\n", receive="^PONG$").check(target)
    down = await check(request="/PING\\n", receive="^PONG$").check(target)
    assert up.status is Status.UP, up
    assert down.reason == "body_mismatch"


async def test_udp_closed_port_is_refused(host: str) -> None:
    port = free_port(host, socket.SOCK_DGRAM)
    result = await check(request="/PING", receive="x").check(
        make_target(host, port, protocol="udp")
    )
    assert result.status is Status.DOWN
    assert result.reason == "refused"


async def test_refused(closed_port: int, host: str) -> None:
    result = await check(request="/PING", receive="PONG").check(make_target(host, closed_port))
    assert result.reason == "refused"


async def test_silent_server_times_out(silent_port: int, host: str) -> None:
    result = await check(0.2, request="/PING", receive="PONG").check(make_target(host, silent_port))
    assert result.status is Status.DOWN
    assert result.reason == "timeout"
