"""What every line-protocol check shares, each kind tested the same way: a refused port and
a server that accepts and never speaks (the negotiate timeout), on 127.0.0.1 and ::1.

ldirectord reports a refused pop/pops server as up when no login is set, and a dead ftp
server as up with an empty receive; healthd reports both down. Each kind's own file tests
it against its real server.
"""

from __future__ import annotations

import asyncio

import pytest

import checks
from checks.base import CheckContext, Status
from tests.checks._support import make_target

KINDS = ["ftp", "smtp", "submission", "pop", "pops", "imap", "imaps", "nntp"]
# with a login set too, so a check that would log in first still needs the greeting
OPTIONS = [{}, {"login": "monitor", "passwd": "pw"}]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "login"])
async def test_refused(kind: str, options: dict[str, str], closed_port: int, host: str) -> None:
    check = checks.load(kind).from_options(options, CheckContext(timeout=5.0))
    result = await check.check(make_target(host, closed_port))
    assert (result.status, result.reason) == (Status.DOWN, "refused")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "login"])
async def test_silent_server_times_out(
    kind: str, options: dict[str, str], silent_port: int, host: str
) -> None:
    check = checks.load(kind).from_options(options, CheckContext(timeout=0.2))
    result = await check.check(make_target(host, silent_port))
    assert (result.status, result.reason) == (Status.DOWN, "timeout")
    assert result.detail == "no answer within 0.2s"


@pytest.mark.parametrize("kind", ["ftp", "smtp", "submission", "nntp"])
async def test_wrong_greeting_is_a_short_status_mismatch(kind: str, host: str) -> None:
    # a 554 greeting (no service) with an 8000-character text: down, the detail cut short
    greeting = "554 " + "x" * 8000 + "\r\n"

    async def greet(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting.encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, host, 0)
    async with server:
        port = int(server.sockets[0].getsockname()[1])
        check = checks.load(kind).from_options({}, CheckContext(timeout=5.0))
        result = await check.check(make_target(host, port))
    assert (result.status, result.reason) == (Status.DOWN, "status_mismatch")
    assert result.detail.startswith("greeting: 554 xxx")
    assert result.detail.endswith("...")
    assert len(result.detail) == len("greeting: ") + 120
