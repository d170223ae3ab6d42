"""Loopback servers for the check tests: closed ports, silent servers, a TLS authority.

Every server binds port 0 on 127.0.0.1 or ::1 (the `host` fixture runs each test on both).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import trustme

from tests.checks._support import SNIRecorder


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


HOSTS = [
    "127.0.0.1",
    pytest.param("::1", marks=pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")),
]


@pytest.fixture(params=HOSTS)
def host(request: pytest.FixtureRequest) -> str:
    """The loopback address a test runs on: 127.0.0.1, then ::1."""
    return str(request.param)


@pytest.fixture
def closed_port(host: str) -> int:
    """A port on `host` that nothing listens on (bound, then closed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def silent_port(host: str) -> AsyncIterator[int]:
    """A port on `host` whose server accepts connections and never says a word."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, host, 0)
    yield int(server.sockets[0].getsockname()[1])
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
def silent_udp_port(host: str) -> Iterator[int]:
    """A UDP port on `host` with a socket that reads nothing and answers nothing."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def unanswered_port(host: str) -> Iterator[int]:
    """A port on `host` whose SYNs go unanswered: a listener with a full accept queue."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        # One completed, never accepted connection fills the queue; the kernel then drops
        # further SYNs, so a new connect() hangs until its timeout.
        with socket.create_connection((host, port), timeout=1):
            yield port


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture(scope="session")
def cafile(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The CA certificate as a PEM file."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_server(ca: trustme.CA) -> SNIRecorder:
    """A server TLS context for www.example.com (signed by `ca`) that records SNI."""
    return SNIRecorder(ca, "www.example.com")
