"""service=http/https/http_proxy against real aiohttp servers and tinyproxy on 127.0.0.1 and ::1."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from aiohttp import web

from checks.base import CheckOptionError, Reason, Status
from checks.http import MAX_BODY, HTTPCheck, HTTPProxyCheck, HTTPSCheck
from tests.checks._support import SNIRecorder, ctx, make_target
from tests.checks.servers.tinyproxy import tinyproxy


def http(options: Mapping[str, str] | None = None, timeout: float = 2.0) -> HTTPCheck:
    return HTTPCheck.from_options(options or {}, ctx(timeout))


def https(options: Mapping[str, str] | None = None, timeout: float = 2.0) -> HTTPSCheck:
    return HTTPSCheck.from_options(options or {}, ctx(timeout))


class Backend:
    """An aiohttp app with a few routes; it records the requests it saw."""

    def __init__(self) -> None:
        self.seen: list[web.Request] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        path = request.path
        if path == "/fail":
            return web.Response(status=500, text="alive but broken")
        if path == "/moved":
            raise web.HTTPFound("/health")
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/big":
            return web.Response(body=b"x" * (MAX_BODY + 10) + b"MARKER")
        if path == "/cookie":
            response = web.Response(text="alive")
            response.set_cookie("session", "1")
            return response
        if path == "/away":
            raise web.HTTPFound(request.query["to"])
        return web.Response(text=f"service alive on {path}?{request.query_string}")


@pytest.fixture
async def backend(aiohttp_server, host: str) -> tuple[Backend, int]:
    app = Backend()
    server = await aiohttp_server(app.app, host=host)
    return app, server.port


async def test_2xx_with_matching_body_is_up(host, backend) -> None:
    app, port = backend
    check = http({"request": "/health", "receive": "ali.e"})
    result = await check.check(make_target(host, port))
    assert (result.status, result.reason) == (Status.UP, Reason.OK)
    assert result.detail == "200 OK"
    assert app.seen[0].method == "GET"
    assert app.seen[0].path == "/health"


async def test_body_mismatch_is_down(host, backend) -> None:
    _, port = backend
    result = await http({"request": "/health", "receive": "^dead"}).check(make_target(host, port))
    assert (result.status, result.reason) == (Status.DOWN, Reason.BODY_MISMATCH)
    assert "'^dead'" in result.detail


async def test_500_is_status_mismatch_even_when_the_body_matches(host, backend) -> None:
    _, port = backend
    result = await http({"request": "/fail", "receive": "alive"}).check(make_target(host, port))
    assert (result.status, result.reason) == (Status.DOWN, Reason.STATUS_MISMATCH)
    assert result.detail == "got 500 Internal Server Error, want 2xx"


async def test_closed_port_is_refused(host, closed_port) -> None:
    result = await http().check(make_target(host, closed_port))
    assert (result.status, result.reason) == (Status.DOWN, Reason.REFUSED)


async def test_silent_server_times_out(host, silent_port) -> None:
    result = await http(timeout=0.3).check(make_target(host, silent_port))
    assert (result.status, result.reason) == (Status.DOWN, Reason.TIMEOUT)
    assert "0.3s" in result.detail


async def test_unanswered_connect_times_out(host, unanswered_port) -> None:
    result = await http(timeout=0.3).check(make_target(host, unanswered_port))
    assert result.reason == Reason.TIMEOUT


async def test_empty_receive_skips_the_body_test(host, backend) -> None:
    _, port = backend
    assert (await http({"receive": ""}).check(make_target(host, port))).up


async def test_head_request(host, backend) -> None:
    app, port = backend
    result = await http({"httpmethod": "head"}).check(make_target(host, port))
    assert result.up
    assert app.seen[0].method == "HEAD"


@pytest.mark.parametrize(
    ("request_option", "path", "query"),
    [("/", "/", ""), ("health.html", "/health.html", ""), ("/a/b?x=1&y=2", "/a/b", "x=1&y=2")],
)
async def test_request_builds_the_url_like_ldirectord(
    host, backend, request_option, path, query
) -> None:
    app, port = backend
    check = http({"request": request_option})
    target = make_target(host, port)
    assert (await check.check(target)).up
    assert (app.seen[0].path, app.seen[0].query_string) == (path, query)
    bracketed = f"[{host}]" if ":" in host else host
    assert str(check.url(target)).startswith(f"http://{bracketed}:{port}/")


async def test_virtualhost_is_the_host_header(host, backend) -> None:
    app, port = backend
    assert (await http({"virtualhost": "www.example.com"}).check(make_target(host, port))).up
    assert app.seen[0].headers["Host"] == "www.example.com"


async def test_without_virtualhost_the_host_header_is_the_real(host, backend) -> None:
    app, port = backend
    assert (await http().check(make_target(host, port))).up
    bracketed = f"[{host}]" if ":" in host else host
    assert app.seen[0].headers["Host"] == bracketed  # ldirectord sends no port


async def test_redirects_are_followed_with_the_virtualhost(host, backend) -> None:
    app, port = backend
    check = http({"request": "/moved", "receive": "on /health", "virtualhost": "www.example.com"})
    result = await check.check(make_target(host, port))
    assert result.up
    assert [r.path for r in app.seen] == ["/moved", "/health"]
    assert {r.headers["Host"] for r in app.seen} == {"www.example.com"}


async def test_redirect_loop_is_down(host, backend) -> None:
    app, port = backend
    result = await http({"request": "/loop"}).check(make_target(host, port))
    assert (result.status, result.reason) == (Status.DOWN, Reason.STATUS_MISMATCH)
    assert "302" in result.detail
    assert len(app.seen) == 8  # the first request and 7 redirects, as LWP


async def test_redirect_to_another_origin_drops_the_host_header(host, backend, aiohttp_server):
    app, port = backend
    other = Backend()
    other_server = await aiohttp_server(other.app, host=host)
    bracketed = f"[{host}]" if ":" in host else host
    elsewhere = f"http://{bracketed}:{other_server.port}/there"
    check = http({"request": f"/away?to={elsewhere}", "virtualhost": "www.example.com"})
    result = await check.check(make_target(host, port))
    assert result.up
    assert app.seen[0].headers["Host"] == "www.example.com"
    assert other.seen[0].headers["Host"] == f"{bracketed}:{other_server.port}"


async def test_full_url_in_request_is_fetched_as_is(host, backend) -> None:
    app, port = backend
    bracketed = f"[{host}]" if ":" in host else host
    check = http({"request": f"http://{bracketed}:{port}/elsewhere", "receive": "elsewhere"})
    # the target's own port is not used: the URL says where to go
    assert (await check.check(make_target(host, 9))).up
    assert app.seen[0].path == "/elsewhere"


async def test_body_read_is_bounded(host, backend) -> None:
    _, port = backend
    result = await http({"request": "/big", "receive": "MARKER"}).check(make_target(host, port))
    assert result.reason == Reason.BODY_MISMATCH


async def _raw_server(host: str, reply: bytes) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, host, 0)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [(b"", Reason.RESET), (b"SSH-2.0-OpenSSH_9.2\r\n", Reason.PROTOCOL_ERROR)],
    ids=["closed-without-answer", "not-http"],
)
async def test_broken_servers(host, reply, reason) -> None:
    server = await _raw_server(host, reply)
    try:
        result = await http().check(make_target(host, server.sockets[0].getsockname()[1]))
    finally:
        server.close()
        await server.wait_closed()
    assert (result.status, result.reason) == (Status.DOWN, reason)


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"httpmethod": "POST"}, "httpmethod"),
        ({"receive": "(unclosed"}, "receive"),
        ({"tls_verify": "maybe"}, "tls_verify"),
        ({"tls_cafile": "/nonexistent/ca.pem"}, "tls_cafile"),
        ({"request": "http://"}, "request"),
    ],
)
def test_bad_options_name_the_option(options, option) -> None:
    with pytest.raises(CheckOptionError) as info:
        HTTPCheck.from_options(options, ctx())
    assert info.value.option == option
    assert str(info.value)


# --- https -------------------------------------------------------------------------------


@pytest.fixture
async def tls_backend(aiohttp_server, host, tls_server: SNIRecorder):
    app = Backend()
    server = await aiohttp_server(app.app, host=host, ssl=tls_server.context)
    return app, server.port, tls_server


async def test_https_self_signed_is_up_by_default(host, tls_backend) -> None:
    _, port, tls = tls_backend
    result = await https({"receive": "alive"}).check(make_target(host, port))
    assert result.up
    assert tls.names == [None]  # no virtualhost: no SNI (an IP is never sent as SNI)


async def test_https_sends_virtualhost_as_sni_and_host(host, tls_backend) -> None:
    app, port, tls = tls_backend
    result = await https({"virtualhost": "www.example.com"}).check(make_target(host, port))
    assert result.up
    assert tls.names == ["www.example.com"]
    assert app.seen[0].headers["Host"] == "www.example.com"


@pytest.mark.parametrize("name_option", ["virtualhost", "tls_hostname"])
async def test_https_verified_with_the_right_ca_and_name(
    host, tls_backend, cafile, name_option
) -> None:
    _, port, tls = tls_backend
    options = {"tls_verify": "yes", "tls_cafile": cafile, name_option: "www.example.com"}
    result = await https(options).check(make_target(host, port))
    assert (result.status, result.reason) == (Status.UP, Reason.OK)
    assert tls.names == ["www.example.com"]


async def test_https_verify_with_the_wrong_name_is_tls_error(host, tls_backend, cafile) -> None:
    _, port, _ = tls_backend
    options = {"tls_verify": "yes", "tls_cafile": cafile, "virtualhost": "other.example.com"}
    result = await https(options).check(make_target(host, port))
    assert (result.status, result.reason) == (Status.DOWN, Reason.TLS_ERROR)
    assert "other.example.com" in result.detail or "mismatch" in result.detail.lower()


async def test_https_verify_without_the_ca_is_tls_error(host, tls_backend) -> None:
    _, port, _ = tls_backend
    options = {"tls_verify": "yes", "virtualhost": "www.example.com"}
    result = await https(options).check(make_target(host, port))
    assert (result.status, result.reason) == (Status.DOWN, Reason.TLS_ERROR)
    assert "certificate verify failed" in result.detail


async def test_full_https_url_in_an_http_check_gets_sni(host, tls_backend) -> None:
    app, port, tls = tls_backend
    bracketed = f"[{host}]" if ":" in host else host
    check = http({"request": f"https://{bracketed}:{port}/x", "virtualhost": "www.example.com"})
    assert (await check.check(make_target(host, 9))).up
    assert tls.names == ["www.example.com"]
    assert app.seen[0].headers["Host"] == "www.example.com"


async def test_https_against_plain_http_is_tls_error(host, backend) -> None:
    _, port = backend
    result = await https().check(make_target(host, port))
    assert (result.status, result.reason) == (Status.DOWN, Reason.TLS_ERROR)


async def test_https_refused_and_timeout(host, closed_port, silent_port) -> None:
    assert (await https().check(make_target(host, closed_port))).reason == Reason.REFUSED
    result = await https(timeout=0.3).check(make_target(host, silent_port))
    assert result.reason == Reason.TIMEOUT


async def test_https_500_is_status_mismatch(host, tls_backend) -> None:
    _, port, _ = tls_backend
    result = await https({"request": "/fail"}).check(make_target(host, port))
    assert result.reason == Reason.STATUS_MISMATCH


# --- http_proxy --------------------------------------------------------------------------


class FakeProxy:
    """A loopback 'proxy' that answers every request itself and records the request line."""

    def __init__(self, status: int = 200, body: bytes = b"proxied page") -> None:
        self.lines: list[bytes] = []
        self.status, self.body = status, body

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.lines.append(head.split(b"\r\n", 1)[0])
        writer.write(
            b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (self.status, len(self.body), self.body)
        )
        await writer.drain()
        writer.close()


async def _proxy_check(host: str, proxy: FakeProxy, options: dict[str, str]):
    server = await asyncio.start_server(proxy.serve, host, 0)
    try:
        check = HTTPProxyCheck.from_options(options, ctx())
        return await check.check(make_target(host, server.sockets[0].getsockname()[1]))
    finally:
        server.close()
        await server.wait_closed()


async def test_http_proxy_fetches_the_absolute_url_through_the_real(host) -> None:
    proxy = FakeProxy()
    options = {"request": "http://www.example.com/status", "receive": "proxied"}
    result = await _proxy_check(host, proxy, options)
    assert result.up
    assert proxy.lines == [b"GET http://www.example.com/status HTTP/1.1"]


async def test_http_proxy_mismatches(host) -> None:
    options = {"request": "http://www.example.com/", "receive": "proxied"}
    result = await _proxy_check(host, FakeProxy(status=502), options)
    assert result.reason == Reason.STATUS_MISMATCH
    result = await _proxy_check(host, FakeProxy(body=b"other"), options)
    assert result.reason == Reason.BODY_MISMATCH


async def test_http_proxy_refused_and_timeout(host, closed_port, silent_port) -> None:
    options = {"request": "http://www.example.com/"}
    check = HTTPProxyCheck.from_options(options, ctx(0.3))
    assert (await check.check(make_target(host, closed_port))).reason == Reason.REFUSED
    assert (await check.check(make_target(host, silent_port))).reason == Reason.TIMEOUT


def _url(host: str, port: int, path: str) -> str:
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


async def test_http_proxy_through_tinyproxy_is_up(host, backend, tmp_path) -> None:
    app, port = backend
    options = {"request": _url(host, port, "/status"), "receive": "alive on /status"}
    with tinyproxy(host, tmp_path) as proxy_port:
        result = await HTTPProxyCheck.from_options(options, ctx()).check(
            make_target(host, proxy_port)
        )
    assert (result.status, result.reason) == (Status.UP, Reason.OK)
    assert [request.path for request in app.seen] == ["/status"]
    assert "tinyproxy" in app.seen[0].headers.get("Via", "")  # it came through the proxy


async def test_http_proxy_through_tinyproxy_mismatches(host, backend, closed_port, tmp_path):
    _, port = backend
    cases = [
        ({"request": _url(host, port, "/fail")}, Reason.STATUS_MISMATCH),
        ({"request": _url(host, port, "/"), "receive": "no such text"}, Reason.BODY_MISMATCH),
        # the proxy cannot reach the origin and answers 5xx itself
        ({"request": _url(host, closed_port, "/")}, Reason.STATUS_MISMATCH),
    ]
    with tinyproxy(host, tmp_path) as proxy_port:
        for options, reason in cases:
            check = HTTPProxyCheck.from_options(options, ctx())
            result = await check.check(make_target(host, proxy_port))
            assert (result.status, result.reason) == (Status.DOWN, reason), options


@pytest.mark.parametrize("request_option", ["/", "status.html", "ftp://example.com/"])
def test_http_proxy_needs_an_absolute_http_url(request_option) -> None:
    with pytest.raises(CheckOptionError, match="absolute URL") as info:
        HTTPProxyCheck.from_options({"request": request_option}, ctx())
    assert info.value.option == "request"


async def test_each_check_is_a_fresh_connection_without_cookies(host, backend) -> None:
    # what health checks need of their client: no connection kept between runs, no cookie
    # carried from one answer to the next request
    app, port = backend
    check = http({"request": "/cookie"})
    for _ in range(2):
        assert (await check.check(make_target(host, port))).up
    assert len(app.seen) == 2
    assert [r.headers.get("Cookie") for r in app.seen] == [None, None]
    assert [r.headers.get("Connection") for r in app.seen] == ["close", "close"]
