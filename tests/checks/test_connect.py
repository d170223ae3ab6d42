"""checktype=connect against real loopback listeners on IPv4 and IPv6."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from checks.base import Reason, Status
from checks.connect import ConnectCheck
from tests.checks._support import ctx, make_target


@pytest.fixture
async def listening_port(host: str) -> AsyncIterator[int]:
    accepted: list[asyncio.StreamWriter] = []

    async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        writer.close()

    server = await asyncio.start_server(serve, host, 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def test_listening_port_is_up(host: str, listening_port: int) -> None:
    check = ConnectCheck.from_options({}, ctx(1.0))
    result = await check.check(make_target(host, listening_port))
    assert result.status is Status.UP
    assert result.reason == Reason.OK
    assert result.elapsed >= 0


async def test_closed_port_is_refused(host: str, closed_port: int) -> None:
    result = await ConnectCheck.from_options({}, ctx(1.0)).check(make_target(host, closed_port))
    assert (result.status, result.reason) == (Status.DOWN, "refused")
    assert "refused" in result.detail.lower()


async def test_unanswered_connect_times_out(host: str, unanswered_port: int) -> None:
    check = ConnectCheck.from_options({}, ctx(0.3))
    result = await check.check(make_target(host, unanswered_port))
    assert (result.status, result.reason) == (Status.DOWN, "timeout")
    assert "0.3s" in result.detail


async def test_accepting_server_that_never_answers_is_up(host: str, silent_port: int) -> None:
    # connect only needs the handshake; a server that then stays silent is still up
    result = await ConnectCheck.from_options({}, ctx(0.3)).check(make_target(host, silent_port))
    assert result.status is Status.UP


def test_from_options_takes_the_context_timeout() -> None:
    assert ConnectCheck.from_options({"request": "ignored"}, ctx(0.7)).timeout == 0.7


async def test_repeated_checks_leave_no_socket_open(
    host: str, listening_port: int, closed_port: int, unanswered_port: int
) -> None:
    before = len(os.listdir("/proc/self/fd"))
    check = ConnectCheck.from_options({}, ctx(0.05))
    seen = set()
    for port in (listening_port, closed_port, unanswered_port) * 3:
        seen.add((await check.check(make_target(host, port))).reason)
    assert seen == {"ok", "refused", "timeout"}
    await asyncio.sleep(0.05)  # the listener's side of each accepted connection closes
    assert len(os.listdir("/proc/self/fd")) <= before


async def test_the_up_detail_names_the_target(host: str, listening_port: int) -> None:
    target = make_target(host, listening_port)
    result = await ConnectCheck.from_options({}, ctx(1.0)).check(target)
    assert result.detail == f"connected to {target}"
