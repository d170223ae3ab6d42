"""radius check against a real FreeRADIUS on 127.0.0.1 and ::1, plus packet unit tests."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest

import checks
from checks.base import CheckContext, CheckOptionError, Status
from checks.radius import (
    ACCESS_ACCEPT,
    BAD_SIGNATURE,
    RadiusCheck,
    access_request,
    hide_password,
    verify_response,
)
from tests.checks._support import make_target
from tests.checks.servers.freeradius import PASSWORD, SECRET, USER, FreeRadius, freeradius


@pytest.fixture(scope="module")
def server() -> Iterator[FreeRadius]:
    with freeradius() as running:
        yield running


def ctx(timeout: float = 3.0) -> CheckContext:
    return CheckContext(timeout=timeout)


def opts(**kwargs: str) -> dict[str, str]:
    return {"login": USER, "passwd": PASSWORD, "secret": SECRET} | kwargs


async def test_access_accept_is_up(server: FreeRadius, host: str) -> None:
    result = await RadiusCheck.from_options(opts(), ctx()).check(make_target(host, server.port))
    assert result.status is Status.UP, result
    assert result.detail == "Access-Accept"


async def test_wrong_password_is_rejected(server: FreeRadius, host: str) -> None:
    # ldirectord too counts only Access-Accept as up
    check = RadiusCheck.from_options(opts(passwd="wrong"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "auth_failed"
    assert result.detail == "Access-Reject"


async def test_unknown_user_is_rejected(server: FreeRadius, host: str) -> None:
    check = RadiusCheck.from_options(opts(login="mallory"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.reason == "auth_failed"


async def test_wrong_secret_is_down(server: FreeRadius, host: str) -> None:
    # FreeRADIUS drops a request whose Message-Authenticator it cannot verify, silently
    check = RadiusCheck.from_options(opts(secret="not-the-secret"), ctx(0.6))
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "timeout"


async def test_refused(closed_port: int, host: str) -> None:
    # nothing listens on the UDP port: the ICMP port-unreachable answers at once
    result = await RadiusCheck.from_options(opts(), ctx()).check(make_target(host, closed_port))
    assert result.status is Status.DOWN
    assert result.reason == "refused"


async def test_silent_server_times_out(silent_udp_port: int, host: str) -> None:
    check = RadiusCheck.from_options(opts(), ctx(0.3))
    result = await check.check(make_target(host, silent_udp_port))
    assert result.status is Status.DOWN
    assert result.reason == "timeout"


@pytest.mark.parametrize("missing", ["login", "secret"])
def test_login_and_secret_are_required(missing: str) -> None:
    with pytest.raises(CheckOptionError) as info:
        RadiusCheck.from_options(opts(**{missing: ""}), ctx())
    assert info.value.option == missing


def test_password_hiding_follows_rfc_2865() -> None:
    secret, authenticator = b"xyzzy5461", bytes(range(16))
    hidden = hide_password(b"arctangent", secret, authenticator)
    assert len(hidden) == 16
    key = hashlib.md5(secret + authenticator).digest()
    assert bytes(a ^ b for a, b in zip(hidden, key, strict=True)) == b"arctangent" + b"\0" * 6
    # a second block is chained on the first hidden block
    long = hide_password(b"p" * 20, secret, authenticator)
    key2 = hashlib.md5(secret + long[:16]).digest()
    assert bytes(a ^ b for a, b in zip(long[16:], key2, strict=True)) == b"p" * 4 + b"\0" * 12


def test_response_authenticator_is_checked() -> None:
    secret = b"s"
    packet, authenticator = access_request(7, "u", "p", secret)
    body = b""
    header = bytes([ACCESS_ACCEPT, 7]) + (20).to_bytes(2, "big")
    signed = header + hashlib.md5(header + authenticator + body + secret).digest()
    assert verify_response(signed, 7, authenticator, secret) == ACCESS_ACCEPT
    assert verify_response(signed, 7, authenticator, b"other") == BAD_SIGNATURE
    assert verify_response(signed, 8, authenticator, secret) is None
    assert verify_response(signed[:19], 7, authenticator, secret) is None
    assert packet[:2] == bytes([1, 7])


def test_default_port() -> None:
    assert checks.KINDS["radius"].port == 1812


class _WrongSecretResponder(asyncio.DatagramProtocol):
    """Answers every request with an Access-Accept signed with another secret."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        header = bytes([ACCESS_ACCEPT, data[1]]) + (20).to_bytes(2, "big")
        signature = hashlib.md5(header + data[4:20] + b"another-secret").digest()
        self.transport.sendto(header + signature, addr)  # type: ignore[attr-defined]


async def test_answers_signed_with_another_secret_are_a_protocol_error(host: str) -> None:
    # a scripted responder: FreeRADIUS itself drops such requests instead of answering
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_WrongSecretResponder, local_addr=(host, 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        result = await RadiusCheck.from_options(opts(), ctx(0.3)).check(make_target(host, port))
    finally:
        transport.close()
    assert result.status is Status.DOWN
    assert result.reason == "protocol_error"
    assert "wrong secret" in result.detail
