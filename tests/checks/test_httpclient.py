"""checks._httpclient against scripted loopback servers: framing, interim answers, tunnels."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from yarl import URL

from checks._httpclient import (
    NoAnswerError,
    ProtocolError,
    Response,
    direct,
    fetch,
    fetch_direct,
    host_header,
)
from tests.checks._support import SNIRecorder

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEADERS = {"User-Agent": "healthd"}


def _url(host: str, port: int, path: str = "/x", scheme: str = "http") -> URL:
    bracketed = f"[{host}]" if ":" in host else host
    return URL(f"{scheme}://{bracketed}:{port}{path}")


class Scripted:
    """A server that reads one request head and answers with fixed bytes; it records heads."""

    def __init__(self, reply: bytes, *, close: bool = True) -> None:
        self.reply, self.close = reply, close
        self.heads: list[bytes] = []
        self.held: list[asyncio.StreamWriter] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.reply)
            await writer.drain()
        except ConnectionError:
            pass  # the client may hang up as soon as it has seen enough
        if self.close:
            writer.close()
        else:
            self.held.append(writer)  # keep-alive that ignores "Connection: close"


@pytest.fixture
async def serve(host: str) -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []
    handlers: list[Handler] = []

    async def start(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> int:
        server = await asyncio.start_server(handler, host, 0, ssl=ssl_context)
        servers.append(server)
        handlers.append(handler)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for handler in handlers:
        for writer in getattr(handler, "held", []):
            writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()


async def _get(host: str, port: int, method: str = "GET", limit: int = 1 << 20) -> Response:
    async with asyncio.timeout(2):
        return await fetch(method, _url(host, port), headers=HEADERS, limit=limit)


async def test_request_head_is_http11_with_connection_close(host, serve) -> None:
    server = Scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    port = await serve(server)
    resp = await _get(host, port)
    assert (resp.status, resp.reason, resp.body) == (200, "OK", b"ok")
    lines = server.heads[0].decode().split("\r\n")
    assert lines[0] == "GET /x HTTP/1.1"
    bracketed = f"[{host}]" if ":" in host else host
    assert f"Host: {bracketed}:{port}" in lines
    assert "Connection: close" in lines
    assert "User-Agent: healthd" in lines


async def test_content_length_ends_the_body_on_a_server_that_keeps_the_connection(
    host, serve
) -> None:
    server = Scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", close=False)
    port = await serve(server)
    resp = await _get(host, port)  # would time out if it waited for the end of the connection
    assert resp.body == b"hello"


async def test_chunked_body_is_decoded(host, serve) -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    port = await serve(Scripted(reply, close=False))
    assert (await _get(host, port)).body == b"abcde"


async def test_body_until_the_end_of_the_connection_and_limit(host, serve) -> None:
    port = await serve(Scripted(b"HTTP/1.0 200 OK\r\n\r\n" + b"y" * 100))
    assert (await _get(host, port)).body == b"y" * 100
    assert (await _get(host, port, limit=10)).body == b"y" * 10


async def test_interim_100_continue_is_skipped(host, serve) -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: 1\r\nX-A: 2\r\n\r\n"
    port = await serve(Scripted(reply))
    resp = await _get(host, port)
    assert (resp.status, resp.body, resp.headers["x-a"]) == (204, b"", "1, 2")


async def test_head_has_no_body_even_with_a_length(host, serve) -> None:
    port = await serve(Scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", close=False))
    assert (await _get(host, port, method="HEAD")).body == b""


async def test_charset_comes_from_content_type(host, serve) -> None:
    reply = b'HTTP/1.1 200 OK\r\nContent-Type: text/html; charset="latin-1"\r\n\r\n\xe9'
    port = await serve(Scripted(reply))
    assert (await _get(host, port)).charset == "latin-1"


@pytest.mark.parametrize(
    ("reply", "error", "text"),
    [
        (b"", NoAnswerError, "without answering"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", ProtocolError, "not an HTTP answer"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", ProtocolError, "status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", ProtocolError, "5 of 9"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", ProtocolError, "chunk"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", ProtocolError, "chunk"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", ProtocolError, "header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", ProtocolError, "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nX: 1", ProtocolError, "head"),
    ],
)
async def test_broken_answers_raise(host, serve, reply, error, text) -> None:
    port = await serve(Scripted(reply))
    with pytest.raises(error, match=text):
        await _get(host, port)


async def test_not_an_http_url_is_refused_before_connecting() -> None:
    with pytest.raises(ProtocolError, match="not an http"):
        await fetch("GET", URL("ftp://example.com/"), headers={}, limit=10)


def test_host_header_brackets_ipv6_and_drops_default_ports() -> None:
    assert host_header(URL("http://[2001:db8::1]:8080/")) == "[2001:db8::1]:8080"
    assert host_header(URL("https://www.example.com:443/")) == "www.example.com"
    assert host_header(URL("http://192.0.2.1/")) == "192.0.2.1"


async def _relay(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    finally:
        dst.close()


class ConnectProxy:
    """A CONNECT proxy on loopback that tunnels to one fixed port and records the request."""

    def __init__(self, host: str, port: int, status: bytes = b"200 Connection established"):
        self.host, self.port, self.status = host, port, status
        self.heads: list[bytes] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 " + self.status + b"\r\n\r\n")
        if not self.status.startswith(b"200"):
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        await asyncio.gather(_relay(reader, up_writer), _relay(up_reader, writer))


async def test_https_through_a_proxy_uses_a_connect_tunnel(host, serve, ca) -> None:
    tls = SNIRecorder(ca, "www.example.com")
    origin = Scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
    origin_port = await serve(origin, tls.context)
    proxy = ConnectProxy(host, origin_port)
    proxy_port = await serve(proxy)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with asyncio.timeout(2):
        resp = await fetch(
            "GET",
            URL("https://www.example.com/s"),
            headers=HEADERS,
            limit=100,
            tls=client_ctx,
            proxy=_url(host, proxy_port, "/"),
        )
    assert resp.body == b"secret"
    assert proxy.heads[0].startswith(b"CONNECT www.example.com:443 HTTP/1.1\r\n")
    assert tls.names == ["www.example.com"]
    assert origin.heads[0].startswith(b"GET /s HTTP/1.1\r\n")


async def test_a_refused_tunnel_is_a_protocol_error(host, serve) -> None:
    proxy_port = await serve(ConnectProxy(host, 9, status=b"403 Forbidden"))
    with pytest.raises(ProtocolError, match="403 Forbidden"):
        async with asyncio.timeout(2):
            await fetch(
                "GET",
                URL("https://www.example.com/"),
                headers={},
                limit=100,
                proxy=_url(host, proxy_port, "/"),
            )


async def test_a_tunnel_to_an_ipv6_literal_brackets_the_authority(host, serve) -> None:
    # the proxy refuses, so nothing goes past the loopback proxy
    proxy = ConnectProxy(host, 9, status=b"403 Forbidden")
    proxy_port = await serve(proxy)
    with pytest.raises(ProtocolError, match="403 Forbidden"):
        async with asyncio.timeout(2):
            await fetch(
                "GET",
                URL("https://[2001:db8::5]:8443/"),
                headers={},
                limit=100,
                proxy=_url(host, proxy_port, "/"),
            )
    assert proxy.heads[0].startswith(b"CONNECT [2001:db8::5]:8443 HTTP/1.1\r\n")
    assert b"\r\nHost: [2001:db8::5]:8443\r\n" in proxy.heads[0]


@pytest.mark.parametrize("host", ["127.0.0.1"])  # the server must be where localhost points
async def test_a_name_is_looked_up_and_served_the_same(host, serve) -> None:
    # names take the transport path (address literals a bare socket): both must agree
    server = Scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nname")
    port = await serve(server)
    async with asyncio.timeout(2):
        resp = await fetch("GET", URL(f"http://localhost:{port}/n"), headers={}, limit=10)
    assert (resp.status, resp.body) == (200, b"name")
    assert b"Host: localhost:" in server.heads[0]


class Resetting:
    """Sends part of a response head, then resets the connection (SO_LINGER 0)."""

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-")
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


async def test_a_reset_inside_the_head_is_raised(host, serve) -> None:
    port = await serve(Resetting())
    with pytest.raises((ConnectionResetError, ProtocolError)):
        async with asyncio.timeout(2):
            await fetch("GET", _url(host, port), headers={}, limit=10)


@pytest.mark.parametrize("host", ["127.0.0.1"])  # the server must be where localhost points
async def test_a_reset_inside_the_head_is_raised_by_name(host, serve) -> None:
    port = await serve(Resetting())
    with pytest.raises((ConnectionResetError, ProtocolError)):
        async with asyncio.timeout(2):
            await fetch("GET", URL(f"http://localhost:{port}/"), headers={}, limit=10)


# --- the direct exchange (plain HTTP to an address literal, on loop callbacks) -------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_request_larger_than_the_socket_buffer_is_sent_whole(host, serve) -> None:
    big = "a" * (8 << 20)  # more than loopback's send buffer: send() must go round again
    seen: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reader._limit = 1 << 30  # type: ignore[attr-defined]
        seen.append(len(await reader.readuntil(b"\r\n\r\n")))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    port = await serve(handler)
    async with asyncio.timeout(10):
        resp = await fetch("GET", _url(host, port), headers={"X-Big": big}, limit=100)
    assert (resp.status, resp.body) == (200, b"ok")
    assert seen
    assert seen[0] > len(big)


async def test_a_prepared_request_is_sent_as_is_every_time(host, serve) -> None:
    server = Scripted(b"HTTP/1.1 204 No Content\r\n\r\n")
    port = await serve(server)
    prepared = direct("GET", _url(host, port, "/ok?x=1"), {"User-Agent": "healthd"})
    assert prepared is not None
    for _ in range(3):
        async with asyncio.timeout(2):
            assert (await fetch_direct(prepared, limit=10)).status == 204
    assert len(server.heads) == 3
    assert len(set(server.heads)) == 1
    assert server.heads[0].startswith(b"GET /ok?x=1 HTTP/1.1\r\n")


def test_only_plain_http_to_an_address_literal_goes_direct() -> None:
    assert direct("GET", URL("http://127.0.0.1:81/"), {}) is not None
    assert direct("GET", URL("http://[::1]/"), {}) is not None
    assert direct("GET", URL("https://127.0.0.1/"), {}) is None  # TLS: a transport
    assert direct("GET", URL("http://localhost/"), {}) is None  # a name: looked up


async def test_a_timeout_closes_the_socket(host, serve) -> None:
    server = Scripted(b"", close=False)  # reads the request, never answers
    port = await serve(server)
    before = _open_fds()
    for _ in range(5):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await fetch("GET", _url(host, port), headers=HEADERS, limit=10)
    await asyncio.sleep(0.05)  # the server side of each connection is the server's
    for writer in server.held:
        writer.close()
    server.held.clear()
    await asyncio.sleep(0.05)
    assert _open_fds() <= before


async def test_a_refused_connection_raises_and_leaves_no_socket(host, closed_port) -> None:
    before = _open_fds()
    with pytest.raises(ConnectionRefusedError):
        async with asyncio.timeout(2):
            await fetch("GET", _url(host, closed_port), headers=HEADERS, limit=10)
    assert _open_fds() == before
