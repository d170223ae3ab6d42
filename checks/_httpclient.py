"""A small HTTP/1.1 client for health checks: one request per connection, bounded reads.

Speaks what a check needs and no more: a request with `Connection: close`, the status line,
the headers, and a body of at most `limit` bytes framed by Content-Length, the chunked coding
or the end of the connection; TLS through a given ssl context and SNI name; absolute-form
requests and CONNECT tunnels through a proxy. It follows no redirect (checks.http does).
It raises for every failure (OSError, ssl.SSLError, ProtocolError, NoAnswerError); the
caller bounds it with asyncio.timeout and turns the failure into a Result.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from checks._chunked import ChunkError, Dechunker
from checks._exchange import Exchange
from checks.base import host_text

if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv6Address

    from yarl import URL  # imported by checks.http only when a request needs URL parsing

MAX_HEAD: Final = 64 * 1024  # bytes of status line + headers accepted
_NO_BODY: Final = frozenset({204, 304})


class ProtocolError(ValueError):
    """The server answered, but not with a well-formed HTTP/1.x response."""


class NoAnswerError(EOFError):
    """The server closed the connection without sending anything."""


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP response: status, reason phrase, headers (lower-case names), bounded body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def charset(self) -> str | None:
        """Return the charset parameter of Content-Type, if any."""
        for param in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip('"') or None
        return None


@dataclass(slots=True)
class _Head:
    status: int
    reason: str
    headers: dict[str, str]
    end: int  # offset of the body in the buffer


def _parse_head(buf: bytes | bytearray, end: int) -> _Head:
    lines = buf[:end].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            if line:
                raise ProtocolError(f"malformed header line: {line[:60]!r}")
            continue
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return _Head(int(code), reason.strip(), headers, end + 4)


class _Framer:
    """Knows when a response in the buffer is complete, and cuts it into a Response.

    The head is parsed once, when it is whole; from then on `complete` only compares the
    buffer's length with the body the head announced (or looks for the last chunk).
    """

    def __init__(self, head_only: bool, limit: int) -> None:
        self.head_only = head_only
        self.limit = limit
        self.head: _Head | None = None
        self.error: ProtocolError | None = None
        self.done = False  # complete, or broken: nothing more to read
        self._chunks: Dechunker | None = None  # a chunked body, decoded as it arrives
        self._length: int | None = None  # Content-Length, when given
        self._want = 0  # body bytes that complete a response that is not chunked

    def complete(self, buf: bytearray) -> bool:
        """Return whether the response is complete (or broken): never raises."""
        if self.done:
            return True
        try:
            head = self.head or self._read_head(buf)
            if head is None:
                return False
            if self._chunks is not None:
                self.done = self._chunks.feed(buf)
            else:
                self.done = len(buf) - head.end >= self._want
        except ProtocolError as exc:
            self.error, self.done = exc, True
        except ChunkError as exc:
            self.error, self.done = ProtocolError(str(exc)), True
        return self.done

    def _read_head(self, buf: bytearray) -> _Head | None:
        """Parse the final head once it is whole (skipping 1xx interim ones); None until then."""
        while True:
            if buf[:5] != b"HTTP/"[: len(buf)]:
                raise ProtocolError(f"not an HTTP answer: {bytes(buf[:40])!r}")
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise ProtocolError("response head too long")
                return None
            head = _parse_head(buf, end)
            if 100 <= head.status < 200:
                del buf[: head.end]  # an interim response (100 Continue): the real one follows
                continue
            break
        if not (self.head_only or head.status in _NO_BODY):
            if "chunked" in head.headers.get("transfer-encoding", "").lower():
                self._chunks = Dechunker(head.end, self.limit)
            else:
                text = head.headers.get("content-length")
                if text is not None:
                    if not text.isdigit():
                        raise ProtocolError(f"malformed Content-Length {text[:20]!r}")
                    self._length = int(text)
                self._want = self.limit if self._length is None else min(self._length, self.limit)
        self.head = head
        return head

    def response(self, buf: bytearray, closed: bool) -> Response:
        """Return the response in the buffer; raise if it is broken or was cut short."""
        if not self.complete(buf) and not closed:
            raise ProtocolError("incomplete response")  # pragma: no cover - defensive
        if self.error is not None:
            raise self.error
        head = self.head
        if head is None:
            if not buf:
                raise NoAnswerError("server closed the connection without answering")
            raise ProtocolError("connection closed inside the response head")
        data = buf[head.end :]
        if self._chunks is not None:
            if not self._chunks.done:
                raise ProtocolError("connection closed inside a chunked body")
            body = bytes(self._chunks.body)
        else:
            if self._length is not None and len(data) < self._want:
                raise ProtocolError(f"body ended after {len(data)} of {self._length} bytes")
            body = bytes(data[: self._want])
        return Response(head.status, head.reason, head.headers, body)


class _Connection(asyncio.Protocol):
    """Collects what the server sends; wakes the reader only when `ready` says so."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.closed = False
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._ready: Callable[[bytearray], bool] = lambda _: False
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass, yet has its methods
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self._ready(self.buf):
            self._wake()

    def eof_received(self) -> None:
        self.closed = True
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = self.error or exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def until(self, ready: Callable[[bytearray], bool]) -> None:
        """Wait until `ready(buf)` holds or the connection ends."""
        self._ready = ready
        if ready(self.buf) or self.closed:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _literal_family(host: str) -> int | None:
    """Return AF_INET or AF_INET6 for an address literal, None for a name."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.inet_pton(family, host)
    except OSError:
        return None
    return family


def host_header(url: URL) -> str:
    """Return the Host header for a URL: the host, bracketed if IPv6, and a non-default port."""
    host = host_text(url.raw_host or "")
    return host if url.is_default_port() else f"{host}:{url.port}"


def _request(method: str, target: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True, slots=True)
class Direct:
    """A plain-HTTP request made once and sent as is to an address literal, many times over."""

    family: int
    address: tuple[str, int]
    data: bytes
    head_only: bool


def _literal(url: URL) -> tuple[int, tuple[str, int]] | None:
    """Return (family, address) for a plain-HTTP URL on an address literal, else None."""
    host = url.host
    if url.scheme != "http" or not host:
        return None
    family = _literal_family(host)
    return None if family is None else (family, (host, url.port or 80))


def direct(method: str, url: URL, headers: Mapping[str, str]) -> Direct | None:
    """Prepare `method url` for fetch_direct; None when it cannot go direct (TLS, a name)."""
    where = _literal(url)
    if where is None:
        return None
    all_headers = {"Host": host_header(url), **headers, "Connection": "close"}
    data = _request(method, url.raw_path_qs or "/", all_headers)
    return Direct(*where, data, method == "HEAD")


# a path yarl leaves as written: unreserved characters and "/" (RFC 3986), no dot segment,
# no empty one; anything else (a query, a quote, %, non-ASCII) is parsed by yarl instead
_PLAIN_PATH: Final = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?")


def direct_plain(
    method: str,
    address: IPv4Address | IPv6Address,
    port: int,
    request: str,
    headers: Mapping[str, str],
) -> Direct | None:
    """Prepare `method http://address:port/request` without a URL object, when it is plain.

    The same bytes as direct() on yarl's URL for it (tests/checks/test_http_plain.py), for
    the common request that needs no parsing; None for any other, which takes direct().
    """
    path = "/" + request
    if port <= 0 or _PLAIN_PATH.fullmatch(path) is None:
        return None
    host = str(address)
    authority = host_text(address)
    all_headers = {"Host": authority if port == 80 else f"{authority}:{port}", **headers}
    all_headers["Connection"] = "close"
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    return Direct(family, (host, port), _request(method, path, all_headers), method == "HEAD")


async def fetch_direct(request: Direct, *, limit: int) -> Response:
    """Send a prepared request on a new connection and return the response."""
    framer = _Framer(request.head_only, limit)
    exchange = Exchange(asyncio.get_running_loop(), request.family, request.data, framer.complete)
    exchange.start(request.address)
    await exchange.done
    if exchange.error is not None and framer.head is None:
        raise exchange.error
    return framer.response(exchange.buf, exchange.closed)


async def fetch(
    method: str,
    url: URL,
    *,
    headers: Mapping[str, str],
    limit: int,
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    proxy: URL | None = None,
) -> Response:
    """Send one request for `url` (through `proxy` if given) and return the response."""
    if url.scheme not in ("http", "https") or not url.host:
        raise ProtocolError(f"cannot fetch {str(url)[:80]!r}: not an http(s) URL")
    secure = url.scheme == "https"
    all_headers = {"Host": host_header(url), **headers, "Connection": "close"}
    if proxy is None:
        where = _literal(url)
        target = url.raw_path_qs or "/"
    else:
        where = None if secure else _literal(proxy)
        target = str(url)  # absolute-form, as a proxy wants it
    if where is not None:
        data = _request(method, target, all_headers)
        return await fetch_direct(Direct(*where, data, method == "HEAD"), limit=limit)
    context = (tls or ssl.create_default_context()) if secure else None
    name = (server_hostname or url.host) if secure else None
    if proxy is None:
        conn = await _open(url, context, name)
    else:
        conn = await _open(proxy, None, None)  # TLS, if any, starts inside the tunnel
    try:
        if proxy is not None and context is not None:
            await _tunnel(conn, url, context, name, limit)
            target = url.raw_path_qs or "/"
        await conn.send(_request(method, target, all_headers))
        framer = _Framer(method == "HEAD", limit)
        await conn.until(framer.complete)
        if conn.error is not None and framer.head is None:
            raise conn.error
        return framer.response(conn.buf, conn.closed)
    finally:
        conn.close()


async def _open(url: URL, context: ssl.SSLContext | None, name: str | None) -> _Connection:
    conn = _Connection()
    loop = asyncio.get_running_loop()
    host, port = url.host or "", url.port or 0
    await loop.create_connection(lambda: conn, host, port, ssl=context, server_hostname=name)
    return conn


async def _tunnel(
    conn: _Connection, url: URL, context: ssl.SSLContext, name: str | None, limit: int
) -> None:
    """Open a CONNECT tunnel to url's host:port through the proxy, then start TLS in it."""
    authority = f"{host_text(url.raw_host or '')}:{url.port}"
    await conn.send(_request("CONNECT", authority, {"Host": authority}))
    framer = _Framer(True, limit)
    await conn.until(framer.complete)
    answer = framer.response(conn.buf, conn.closed)
    if not 200 <= answer.status < 300:
        raise ProtocolError(f"proxy refused the tunnel: {answer.status} {answer.reason}".strip())
    conn.buf.clear()
    assert conn.transport is not None
    loop = asyncio.get_running_loop()
    tunnelled = await loop.start_tls(conn.transport, conn, context, server_hostname=name)
    if tunnelled is None:
        raise ProtocolError("TLS through the proxy tunnel failed")  # pragma: no cover
    # not isinstance-checked: uvloop's TLS transport is no asyncio.Transport subclass
    conn.transport = tunnelled
