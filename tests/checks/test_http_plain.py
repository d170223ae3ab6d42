"""The plain-request shortcut of the HTTP check: yarl's bytes without importing yarl.

checks._httpclient.direct_plain prepares `GET /request` for an address-literal real when
the path needs no parsing; it must send exactly what direct() sends for yarl's URL of it,
and decline every request yarl would rewrite (quoting, dot segments, queries).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from yarl import URL

from checks import _httpclient as client
from checks.base import host_text

ADDRESSES = [ip_address("192.0.2.7"), ip_address("2001:db8::7")]
PLAIN = ["", "ok.html", "health/check", "a/b/", "x-y_z~1.txt", "UPPER/lower.PHP", "a/b.c/d"]
NOT_PLAIN = [
    "a b", "ä", "a%20b", "a?x=1", "a#frag", "./a", "a/../b", "a/./b", ".hidden", "a//b",
    "a;p", "a:b", "a@b", "a+b", "(x)", "a'b", "a/..", "a/.",
]  # fmt: skip
HEADERS = [{"User-Agent": "healthd", "Accept": "*/*"}, {"Accept": "*/*", "Host": "www.example"}]


def yarl_direct(
    method: str,
    address: IPv4Address | IPv6Address,
    port: int,
    request: str,
    headers: dict[str, str],
) -> client.Direct | None:
    return client.direct(method, URL(f"http://{host_text(address)}:{port}/{request}"), headers)


@pytest.mark.parametrize("address", ADDRESSES, ids=str)
@pytest.mark.parametrize("port", [80, 8080])
@pytest.mark.parametrize("request_path", PLAIN)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("headers", HEADERS, ids=["default", "vhost"])
def test_a_plain_request_is_the_bytes_yarl_makes(address, port, request_path, method, headers):
    plain = client.direct_plain(method, address, port, request_path, headers)
    assert plain is not None
    assert plain == yarl_direct(method, address, port, request_path, headers)


@pytest.mark.parametrize("request_path", NOT_PLAIN)
def test_a_request_that_needs_parsing_is_left_to_yarl(request_path):
    assert client.direct_plain("GET", ADDRESSES[0], 80, request_path, HEADERS[0]) is None


def test_port_zero_is_left_to_yarl():
    assert client.direct_plain("GET", ADDRESSES[0], 0, "ok.html", HEADERS[0]) is None


def serve_once(answer: bytes) -> int:
    """Answer one HTTP request on 127.0.0.1 with `answer`, in a thread; return the port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(answer)
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return int(listener.getsockname()[1])


CHECK = """
import asyncio, json, sys
from checks.base import CheckContext, Target
from checks.http import HTTPCheck
from ipaddress import ip_address
check = HTTPCheck.from_options({{"request": {request!r}, "receive": "ok"}}, CheckContext(timeout=5))
result = asyncio.run(check.check(Target(ip_address("127.0.0.1"), {port})))
print(json.dumps([str(result.status), "yarl" in sys.modules]))
"""


@pytest.mark.parametrize(
    ("request_path", "yarl_loaded"),
    [("/ok.html", False), ("/ok.html?probe=1", True)],
)
def test_the_check_imports_yarl_only_for_a_request_that_needs_it(request_path, yarl_loaded):
    port = serve_once(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    code = CHECK.format(request=request_path, port=port)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert json.loads(out) == ["up", yarl_loaded]
