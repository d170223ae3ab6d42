"""The checks on uvloop, the daemon's loop: ping's raw socket, plain HTTP's bare socket, HTTPS.

The other check tests run on pytest-asyncio's stdlib loops; these run the same code paths on
a uvloop loop of their own against servers started on that loop, on 127.0.0.1 and ::1.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trustme

from checks.base import Result, Status
from checks.connect import ConnectCheck
from checks.deadline import within
from checks.http import HTTPCheck, HTTPSCheck
from tests.checks._support import ctx, make_target
from tests.checks.test_ping import needs_icmp, ping

uvloop = pytest.importorskip("uvloop")


def on_uvloop(main: Callable[[], Awaitable[Result]]) -> Result:
    """Run `main` on a new uvloop loop and return its result."""

    async def wrapped() -> Result:
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        return await main()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(wrapped())


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await reader.readuntil(b"\r\n\r\n")
    status = b"200 OK" if request.startswith(b"GET /ok ") else b"500 Broken"
    writer.write(b"HTTP/1.0 " + status + b"\r\nContent-Length: 5\r\n\r\nalive")
    await writer.drain()
    writer.close()


async def _serve_and_check(host: str, check: HTTPCheck, tls: ssl.SSLContext | None) -> Result:
    server = await asyncio.start_server(_answer, host, 0, ssl=tls)
    async with server:
        port = server.sockets[0].getsockname()[1]
        return await check.check(make_target(host, port))


@pytest.mark.parametrize(("path", "status"), [("/ok", Status.UP), ("/bad", Status.DOWN)])
def test_http_bare_socket_on_uvloop(host: str, path: str, status: Status) -> None:
    check = HTTPCheck.from_options({"request": path, "receive": "alive"}, ctx(2.0))
    result = on_uvloop(lambda: _serve_and_check(host, check, None))
    assert result.status is status, result


def test_https_on_uvloop(host: str) -> None:
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", host).configure_cert(tls)
    check = HTTPSCheck.from_options({"request": "/ok", "receive": "alive"}, ctx(2.0))
    result = on_uvloop(lambda: _serve_and_check(host, check, tls))
    assert (result.status, result.reason) == (Status.UP, "ok"), result


def test_http_refused_on_uvloop(host: str, closed_port: int) -> None:
    check = HTTPCheck.from_options({"request": "/ok"}, ctx(1.0))
    result = on_uvloop(lambda: check.check(make_target(host, closed_port)))
    assert (result.status, result.reason) == (Status.DOWN, "refused"), result


@needs_icmp
def test_ping_raw_socket_on_uvloop(host: str) -> None:
    result = on_uvloop(lambda: ping().check(make_target(host, 0)))
    assert result.status is Status.UP, result


def test_http_timeout_on_uvloop_ends_on_time_and_closes_the_socket(host: str) -> None:
    # the check's coarse timeout (checks.deadline) and the direct exchange, on uvloop
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        held.append(writer)  # never answers

    check = HTTPCheck.from_options({"request": "/ok"}, ctx(0.2))
    fds: list[int] = []

    async def main() -> Result:
        server = await asyncio.start_server(silent, host, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            fds.append(len(os.listdir("/proc/self/fd")))
            result = await check.check(make_target(host, port))
            fds.append(len(os.listdir("/proc/self/fd")) - len(held))
            for writer in held:
                writer.close()
            return result

    result = on_uvloop(main)
    assert (result.status, result.reason) == (Status.DOWN, "timeout"), result
    assert 0.2 <= result.elapsed < 0.2 + 2.0  # never early; precision: test_deadline
    assert fds[1] <= fds[0]  # the check's own socket is closed


def test_within_on_uvloop() -> None:
    async def main() -> Result:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with within(0.1):
                await asyncio.sleep(5)
        except TimeoutError:
            return Result.down("timeout", elapsed=loop.time() - started)
        return Result.ok()

    result = on_uvloop(main)
    assert result.reason == "timeout"
    assert 0.1 <= result.elapsed < 0.1 + 2.0  # never early; precision: test_deadline


def test_connect_on_uvloop(host: str, closed_port: int) -> None:
    async def main() -> list[Result]:
        server = await asyncio.start_server(lambda r, w: w.close(), host, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            check = ConnectCheck.from_options({}, ctx(1.0))
            return [
                await check.check(make_target(host, port)),
                await check.check(make_target(host, closed_port)),
            ]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        up, refused = runner.run(main())
    assert (up.status, refused.reason) == (Status.UP, "refused"), (up, refused)
