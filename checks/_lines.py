"""Shared plumbing for the greeting/line protocols (smtp, pop, imap, nntp, ftp, simpletcp, sip).

It opens one TCP (optionally TLS) connection, reads CRLF lines, sends commands and turns every
expected failure into a Result. It never raises for those, and it knows nothing of healthd.
SessionCheck and LoginCheck are the common shape of a check that is one such session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import ClassVar, Self

from checks._util import TLSSettings, classify
from checks.base import CheckContext, Reason, Result, Stopwatch, Target

# Reason tokens this module reports (see checks.base.Reason).
TIMEOUT = Reason.TIMEOUT
CLOSED = Reason.RESET  # the server closed the connection before it answered
PROTOCOL_ERROR = Reason.PROTOCOL_ERROR  # the server spoke, but not the protocol we expect
STATUS_MISMATCH = Reason.STATUS_MISMATCH  # a wrong greeting or reply code
AUTH_FAILED = Reason.AUTH_FAILED  # the server rejected login/passwd
BODY_MISMATCH = Reason.BODY_MISMATCH  # the answer did not match `receive`

MAX_LINE = 8192  # longest reply line we read
MAX_BODY = 1 << 20  # most bytes of content we read to match `receive`
MAX_REPLY_LINES = 1024  # lines of one multi-line reply; a server sending more is broken
CLOSE_GRACE = 1.0  # seconds a polite close may take before the socket is dropped


class ProtocolFailure(Exception):
    """An expected failure inside a session: carries the Result's reason and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class LineStream:
    """A connection that speaks CRLF-terminated lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def readline(self) -> str:
        """Return the next line without its line ending; EOF is a ProtocolFailure."""
        try:
            raw = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise ProtocolFailure(CLOSED, "connection closed by the server") from exc
            raw = exc.partial
        except asyncio.LimitOverrunError as exc:
            raise ProtocolFailure(PROTOCOL_ERROR, "reply line too long") from exc
        return raw.decode("utf-8", "replace").rstrip("\r\n")

    async def send(self, line: str) -> None:
        """Send one line with CRLF."""
        self.writer.write(line.encode("utf-8") + b"\r\n")
        await self.writer.drain()

    async def expect(self, prefixes: tuple[str, ...], what: str) -> str:
        """Read one line and fail unless it starts with one of `prefixes`."""
        line = await self.readline()
        if not line.startswith(prefixes):
            raise ProtocolFailure(PROTOCOL_ERROR, f"{what}: {shorten(line)}")
        return line

    async def reply(self) -> tuple[int, str]:
        """Read one numeric reply (SMTP/FTP/NNTP style, multi-line `NNN-` continued)."""
        line = await self.readline()
        code = line[:3]
        if not code.isdigit():
            raise ProtocolFailure(PROTOCOL_ERROR, f"not a reply: {shorten(line)}")
        text = line
        lines = 1
        while len(line) > 3 and line[3] == "-":
            lines += 1
            if lines > MAX_REPLY_LINES:
                raise ProtocolFailure(PROTOCOL_ERROR, f"reply of more than {MAX_REPLY_LINES} lines")
            line = await self.readline()
            if line[:3] == code and line[3:4] != "-":
                break
        return int(code), text

    async def expect_reply(
        self, ok: tuple[int, ...], what: str, reason: str = STATUS_MISMATCH
    ) -> str:
        """Read one numeric reply and fail with `reason` unless its code is in `ok`."""
        code, text = await self.reply()
        if code not in ok:
            raise ProtocolFailure(reason, f"{what}: {shorten(text)}")
        return text

    async def command(self, line: str, ok: tuple[int, ...], what: str, reason: str) -> str:
        """Send `line` and fail with `reason` unless the reply code is in `ok`."""
        await self.send(line)
        return await self.expect_reply(ok, what, reason)

    def abort(self) -> None:
        """Drop the connection at once."""
        self.writer.transport.abort()

    async def aclose(self) -> None:
        """Close politely, bounded by CLOSE_GRACE; drop the socket if that takes longer."""
        self.writer.close()
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await self.writer.wait_closed()
        except (OSError, TimeoutError):
            self.abort()


def shorten(text: str, limit: int = 120) -> str:
    """Return `text` cut to `limit` characters for a Result detail."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


Session = Callable[[LineStream], Awaitable[str]]


async def run(
    target: Target,
    seconds: float,
    session: Session,
    *,
    tls: TLSSettings | None = None,
) -> Result:
    """Connect to `target`, run `session` within `seconds` and return its Result."""
    watch = Stopwatch()
    stream: LineStream | None = None
    try:
        async with asyncio.timeout(seconds):
            reader, writer = await asyncio.open_connection(
                str(target.address),
                target.port,
                ssl=tls.context() if tls else None,
                server_hostname=tls.hostname if tls else None,
                limit=MAX_LINE,
            )
            stream = LineStream(reader, writer)
            detail = await session(stream)
    except BaseException as exc:
        if stream is not None:
            stream.abort()
        if isinstance(exc, Exception):
            return failure(watch, exc, seconds)
        raise
    await stream.aclose()
    return watch.up(detail)


def failure(watch: Stopwatch, exc: Exception, seconds: float) -> Result:
    """Map an expected exception from a session to a DOWN Result; re-raise any other."""
    if isinstance(exc, ProtocolFailure):
        return watch.down(exc.reason, exc.detail)
    if isinstance(exc, TimeoutError):
        return watch.down(TIMEOUT, f"no answer within {seconds:g}s")
    if isinstance(exc, OSError | EOFError):
        reason, detail = classify(exc)
        return watch.down(reason, shorten(detail))
    raise exc


class SessionCheck:
    """A check that is one session over one connection (smtp, nntp; the base of pop, imap).

    A subclass names its kind and writes session(); implicit_tls=True runs it
    over TLS with the tls_* options.
    """

    kind: ClassVar[str]
    implicit_tls: ClassVar[bool] = False

    def __init__(self, timeout: float, tls: TLSSettings | None = None) -> None:
        self.timeout = timeout
        self.tls = tls

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check; only the timeout (and the TLS settings of a TLS kind) matter."""
        return cls(ctx.timeout, cls._tls(options))

    @classmethod
    def _tls(cls, options: Mapping[str, str]) -> TLSSettings | None:
        return TLSSettings.from_options(options) if cls.implicit_tls else None

    async def check(self, target: Target) -> Result:
        """Connect, run the session within the timeout and return its Result."""
        return await run(target, self.timeout, self.session, tls=self.tls)

    async def session(self, stream: LineStream) -> str:
        """Speak the protocol; return the UP detail or raise ProtocolFailure."""
        raise NotImplementedError


class LoginCheck(SessionCheck):
    """A SessionCheck that logs in with `login`/`passwd` when a login is set (pop, imap)."""

    def __init__(
        self, timeout: float, login: str, passwd: str, tls: TLSSettings | None = None
    ) -> None:
        super().__init__(timeout, tls)
        self.login = login
        self.passwd = passwd

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check from login and passwd (and the TLS settings of a TLS kind)."""
        login, passwd = options.get("login", ""), options.get("passwd", "")
        return cls(ctx.timeout, login, passwd, cls._tls(options))


async def close_quietly(stream: LineStream, line: str) -> None:
    """Send a goodbye (QUIT/LOGOUT) and read one reply line, ignoring any failure."""
    with suppress(ProtocolFailure, OSError):
        async with asyncio.timeout(CLOSE_GRACE):
            await stream.send(line)
            await stream.readline()


class Datagrams(asyncio.DatagramProtocol):
    """Collects the datagrams and the ICMP errors of one connected UDP socket (also radius)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.queue.put_nowait(exc)

    async def next(self) -> bytes:
        """Return the next datagram; an ICMP error (port unreachable) is raised."""
        item = await self.queue.get()
        if isinstance(item, OSError):
            raise item
        return item


Build = Callable[[tuple[str, int]], bytes]
Judge = Callable[[bytes], "str | None"]


async def run_udp(target: Target, seconds: float, build: Build, judge: Judge) -> Result:
    """Send one datagram built from our local address; `judge` each answer until it decides.

    `judge` returns a detail (UP), None (keep waiting) or raises ProtocolFailure (DOWN).
    """
    watch = Stopwatch()
    loop = asyncio.get_running_loop()
    transport: asyncio.DatagramTransport | None = None
    try:
        async with asyncio.timeout(seconds):
            transport, proto = await loop.create_datagram_endpoint(
                Datagrams, remote_addr=(str(target.address), target.port)
            )
            local = transport.get_extra_info("sockname")
            transport.sendto(build((str(local[0]), int(local[1]))))
            while True:
                detail = judge(await proto.next())
                if detail is not None:
                    return watch.up(detail)
    except (ProtocolFailure, OSError) as exc:
        return failure(watch, exc, seconds)
    finally:
        if transport is not None:
            transport.close()
