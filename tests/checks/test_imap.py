"""imap and imaps checks against a real dovecot on 127.0.0.1 and ::1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from checks.base import CheckContext, Status
from checks.imap import IMAPCheck, IMAPSCheck, quote
from tests.checks._support import make_target
from tests.checks.servers.dovecot import PASSWORD, USER, Dovecot, dovecot


@pytest.fixture(scope="module")
def server(ca: trustme.CA) -> Iterator[Dovecot]:
    with dovecot(ca) as running:
        yield running


def ctx(timeout: float = 5.0) -> CheckContext:
    return CheckContext(timeout=timeout)


def port_of(server: Dovecot, cls: type[IMAPCheck]) -> int:
    return server.imaps if cls.implicit_tls else server.imap


@pytest.mark.parametrize("cls", [IMAPCheck, IMAPSCheck])
async def test_login_succeeds(server: Dovecot, host: str, cls: type[IMAPCheck]) -> None:
    check = cls.from_options({"login": USER, "passwd": PASSWORD}, ctx())
    result = await check.check(make_target(host, port_of(server, cls)))
    assert result.status is Status.UP, result
    assert result.reason == "ok"


@pytest.mark.parametrize("cls", [IMAPCheck, IMAPSCheck])
async def test_wrong_password_is_down(server: Dovecot, host: str, cls: type[IMAPCheck]) -> None:
    check = cls.from_options({"login": USER, "passwd": 'wr"ong\\'}, ctx())
    result = await check.check(make_target(host, port_of(server, cls)))
    assert result.status is Status.DOWN
    assert result.reason == "auth_failed"
    assert "a1 NO" in result.detail


@pytest.mark.parametrize("cls", [IMAPCheck, IMAPSCheck])
async def test_without_login_greeting_is_enough(
    server: Dovecot, host: str, cls: type[IMAPCheck]
) -> None:
    result = await cls.from_options({}, ctx()).check(make_target(host, port_of(server, cls)))
    assert result.up, result
    assert "Dovecot" in result.detail


async def test_wrong_service_is_down(server: Dovecot, host: str) -> None:
    # checkport pointing at the POP3 port: "+OK" is not an IMAP greeting
    result = await IMAPCheck.from_options({}, ctx()).check(make_target(host, server.pop3))
    assert result.status is Status.DOWN
    assert result.reason == "protocol_error"


async def test_imaps_on_plain_port_is_tls_error(server: Dovecot, host: str) -> None:
    result = await IMAPSCheck.from_options({}, ctx()).check(make_target(host, server.imap))
    assert result.reason == "tls_error"


def test_quote_escapes_quotes_and_backslashes() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
