"""Hostile servers on loopback: every check ends within its timeout, with a clear reason,
and holds a bounded amount of memory, whatever the real sends.

Each server misbehaves in one way (endless headers, endless bodies, an endless chunk-size
line, a huge status line, one byte a second, garbage, resets, TLS junk, endless replies...).
The check runs under tracemalloc; the test asserts how it ended (a reason from the closed
set, never `local_error`: a crash would hide a broken real), how long it took (its timeout
plus a small grace) and the peak of memory it allocated.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
import trustme

from checks.base import Check, Reason, Result
from checks.ftp import FTPCheck
from checks.http import HTTPCheck, HTTPSCheck
from checks.imap import IMAPCheck
from checks.nntp import NNTPCheck
from checks.pop import POPCheck, POPSCheck
from checks.smtp import SMTPCheck
from tests.checks._support import ctx, make_target

TIMEOUT = 1.0
GRACE = 0.75  # the loop's and the close's own time on a loaded machine
MEMORY = 8 << 20  # bytes: the 1 MiB body limit and its copies, never what the server sends
CHUNK = b"x" * 65536
FLOOD = 8 * MEMORY

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def flood(writer: asyncio.StreamWriter, head: bytes, unit: bytes = CHUNK) -> None:
    """Send head, then unit as fast as the client reads: FLOOD bytes, 8 times the bound.

    Bounded, because a TLS transport whose peer is gone neither raises nor says it is
    closing: an endless loop would spin here for ever.
    """
    writer.write(head)
    sent = 0
    while sent < FLOOD and not writer.is_closing():
        writer.write(unit)
        sent += len(unit)
        await writer.drain()
    await asyncio.Event().wait()


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float = 1.0) -> None:
    """Send data one byte at a time, one byte a second."""
    for i in range(len(data)):
        if writer.is_closing():
            return
        writer.write(data[i : i + 1])
        await writer.drain()
        await asyncio.sleep(every)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _silent(_r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()


async def _close(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.close()


async def _reset(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    reset(w)


def _sends(data: bytes, then: str = "close") -> Behaviour:
    async def behave(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(data)
        await w.drain()
        if then == "reset":
            reset(w)
        elif then == "hang":
            await asyncio.Event().wait()
        else:
            w.close()

    return behave


def _floods(head: bytes, unit: bytes = CHUNK) -> Behaviour:
    async def behave(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await flood(w, head, unit)

    return behave


def _trickles(data: bytes) -> Behaviour:
    async def behave(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await trickle(w, data)

    return behave


GARBAGE = bytes(range(256)) * 4
TLS_JUNK = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(512)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
HEAD = b"HTTP/1.1 200 OK\r\n"

# name: (behaviour, reasons the check may end with). Timeouts are fine where the server is
# slow or endless; where it is broken at once, the reason says how.
BAD = (Reason.PROTOCOL_ERROR, Reason.STATUS_MISMATCH)
ENDS = (Reason.TIMEOUT, Reason.PROTOCOL_ERROR)
GONE = (Reason.RESET, Reason.PROTOCOL_ERROR)
HTTP_CASES: dict[str, tuple[Behaviour, tuple[str, ...]]] = {
    "endless headers": (
        _floods(HEAD, b"X-Junk: " + b"a" * 100 + b"\r\n"),
        (Reason.PROTOCOL_ERROR,),
    ),
    "endless header line": (_floods(HEAD + b"X-Junk: "), (Reason.PROTOCOL_ERROR,)),
    "huge status line": (_floods(b"HTTP/1.1 200 "), (Reason.PROTOCOL_ERROR,)),
    "endless body": (_floods(b"HTTP/1.1 200 OK\r\n\r\n"), (Reason.BODY_MISMATCH,)),
    "endless body, huge length": (
        _floods(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n"),
        (Reason.BODY_MISMATCH,),
    ),
    "endless chunks": (_floods(CHUNKED, b"10000\r\n" + CHUNK + b"\r\n"), (Reason.BODY_MISMATCH,)),
    "endless tiny chunks": (_floods(CHUNKED, b"1\r\nx\r\n" * 4096), (Reason.PROTOCOL_ERROR,)),
    "unbounded chunk-size line": (_floods(CHUNKED, b"f" * 65536), (Reason.PROTOCOL_ERROR,)),
    "unbounded chunk extension": (_floods(CHUNKED + b"1;", b"a" * 65536), (Reason.PROTOCOL_ERROR,)),
    "huge chunk size": (_floods(CHUNKED + b"f" * 40 + b"\r\n"), (Reason.BODY_MISMATCH,)),
    "endless interim responses": (_floods(b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 512), ENDS),
    "slow head, 1 byte/s": (_trickles(OK), (Reason.TIMEOUT,)),
    "slow body, 1 byte/s": (_trickles(b"x" * 100), ENDS),
    "garbage": (_sends(GARBAGE), BAD),
    "endless garbage": (_floods(b"", GARBAGE), BAD),
    "garbage then silence": (_sends(GARBAGE, "hang"), BAD),
    "TLS junk to a plain client": (_sends(TLS_JUNK, "hang"), BAD),
    "reset at once": (_reset, GONE),
    "reset inside the head": (_sends(HEAD + b"Content-Le", "reset"), GONE),
    "reset inside the body": (_sends(HEAD + b"Content-Length: 99\r\n\r\nok", "reset"), GONE),
    "closed inside the body": (_sends(HEAD + b"Content-Length: 99\r\n\r\nok"), BAD),
    "closed without a word": (_close, GONE),
    "accepts and says nothing": (_silent, (Reason.TIMEOUT,)),
    "malformed content-length": (_sends(HEAD + b"Content-Length: -1\r\n\r\nok"), BAD),
    "NUL in headers": (
        _sends(HEAD + b"X: \x00\x00\r\n\x00\r\n\r\nok"),
        (*BAD, Reason.BODY_MISMATCH),
    ),
}

LINE_CASES: dict[str, tuple[Behaviour, tuple[str, ...]]] = {
    "endless line": (_floods(b"220 ", b"a" * 65536), (Reason.PROTOCOL_ERROR,)),
    "endless continuation": (_floods(b"", b"220-hello\r\n" * 256), BAD),
    "slow greeting, 1 byte/s": (_trickles(b"220 hello\r\n"), (Reason.TIMEOUT,)),
    "garbage": (_sends(GARBAGE), (*BAD, Reason.AUTH_FAILED)),
    "endless garbage": (_floods(b"", GARBAGE), (*BAD, Reason.AUTH_FAILED)),
    "reset at once": (_reset, GONE),
    "closed without a word": (_close, GONE),
    "accepts and says nothing": (_silent, (Reason.TIMEOUT,)),
    "TLS junk": (_sends(TLS_JUNK, "hang"), (*BAD, Reason.TIMEOUT)),
}

LINE_KINDS: dict[str, type[Check]] = {
    "smtp": SMTPCheck,
    "pop": POPCheck,
    "imap": IMAPCheck,
    "ftp": FTPCheck,
    "nntp": NNTPCheck,
}


@dataclass
class Served:
    port: int
    server: asyncio.Server
    tasks: set[asyncio.Task[None]]

    def stop(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()


async def serve(behave: Behaviour, tls: ssl.SSLContext | None = None) -> Served:
    tasks: set[asyncio.Task[None]] = set()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await behave(r, w)
        except (OSError, ssl.SSLError):
            pass  # the check hung up: that is what it should do
        finally:
            w.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    return Served(server.sockets[0].getsockname()[1], server, tasks)


async def measured(check: Check, port: int) -> tuple[Result, float, int]:
    """Run the check once; return its result, how long it took and its peak allocation."""
    tracemalloc.start()
    began = time.monotonic()
    try:
        # the scheduler's own bound is timeout + grace; here the check must end by itself
        result = await asyncio.wait_for(check.check(make_target("127.0.0.1", port)), 10)
        took = time.monotonic() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, took, peak


def judge(result: Result, took: float, peak: int, reasons: tuple[str, ...]) -> None:
    assert result.reason != Reason.LOCAL_ERROR, result.detail  # no crash on hostile input
    assert not result.up, result
    assert result.reason in reasons, f"{result.reason}: {result.detail}"
    assert result.detail  # a clear reason for a human too
    assert len(result.detail) <= 200, result.detail  # bounded, whatever the server sent
    assert took <= TIMEOUT + GRACE, f"took {took:.2f} s"
    assert peak <= MEMORY, f"peak {peak / 1e6:.1f} MB"


@pytest.fixture
async def stopping() -> Iterator[list[Served]]:  # type: ignore[misc]
    served: list[Served] = []
    yield served
    for s in served:
        s.stop()


@pytest.mark.parametrize("case", list(HTTP_CASES))
async def test_http_check_against_a_hostile_server(case: str, stopping: list[Served]) -> None:
    behave, reasons = HTTP_CASES[case]
    served = await serve(behave)
    stopping.append(served)
    check = HTTPCheck.from_options({"request": "/", "receive": "^ok$"}, ctx(TIMEOUT))
    judge(*(await measured(check, served.port)), reasons)


HTTPS_CASES = [
    "endless headers",
    "unbounded chunk-size line",
    "endless body",
    "slow head, 1 byte/s",
]


@pytest.fixture(scope="module")
def server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.mark.parametrize("case", HTTPS_CASES)
async def test_https_check_against_a_hostile_server(
    case: str, stopping: list[Served], server_tls: ssl.SSLContext
) -> None:
    behave, reasons = HTTP_CASES[case]
    served = await serve(behave, server_tls)
    stopping.append(served)
    check = HTTPSCheck.from_options({"request": "/", "receive": "^ok$"}, ctx(TIMEOUT))
    judge(*(await measured(check, served.port)), reasons)


NO_TLS: dict[str, Behaviour] = {
    "plain HTTP and garbage": _sends(b"HTTP/1.1 200 OK\r\n\r\n" + GARBAGE, "hang"),
    "closed without a word": _close,
    "TLS junk": _sends(TLS_JUNK, "hang"),
}


@pytest.mark.parametrize("case", list(NO_TLS))
async def test_https_check_against_a_server_that_speaks_no_tls(
    case: str, stopping: list[Served]
) -> None:
    served = await serve(NO_TLS[case])
    stopping.append(served)
    check = HTTPSCheck.from_options({"request": "/", "receive": "^ok$"}, ctx(TIMEOUT))
    judge(*(await measured(check, served.port)), (Reason.TLS_ERROR, Reason.RESET))


@pytest.mark.parametrize("kind", list(LINE_KINDS))
@pytest.mark.parametrize("case", list(LINE_CASES))
async def test_line_check_against_a_hostile_server(
    kind: str, case: str, stopping: list[Served]
) -> None:
    behave, reasons = LINE_CASES[case]
    served = await serve(behave)
    stopping.append(served)
    check = LINE_KINDS[kind].from_options({"login": "u", "passwd": "p"}, ctx(TIMEOUT))
    judge(*(await measured(check, served.port)), reasons)


@pytest.mark.parametrize("case", ["garbage", "TLS junk", "closed without a word"])
async def test_pops_check_against_a_server_that_speaks_no_tls(
    case: str, stopping: list[Served]
) -> None:
    behave, _ = LINE_CASES[case]
    served = await serve(behave)
    stopping.append(served)
    check = POPSCheck.from_options({"login": "u", "passwd": "p"}, ctx(TIMEOUT))
    judge(*(await measured(check, served.port)), (Reason.TLS_ERROR, Reason.RESET))
