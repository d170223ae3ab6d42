"""pop and pops checks against a real dovecot on 127.0.0.1 and ::1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from checks.base import CheckContext, Status
from checks.pop import POPCheck, POPSCheck
from tests.checks._support import make_target
from tests.checks.servers.dovecot import PASSWORD, USER, Dovecot, dovecot


@pytest.fixture(scope="module")
def server(ca: trustme.CA) -> Iterator[Dovecot]:
    with dovecot(ca) as running:
        yield running


def ctx(timeout: float = 5.0) -> CheckContext:
    return CheckContext(timeout=timeout)


@pytest.mark.parametrize("cls", [POPCheck, POPSCheck])
async def test_login_succeeds(server: Dovecot, host: str, cls: type[POPCheck]) -> None:
    port = server.pop3s if cls.implicit_tls else server.pop3
    check = cls.from_options({"login": USER, "passwd": PASSWORD}, ctx())
    result = await check.check(make_target(host, port))
    assert result.status is Status.UP, result
    assert result.reason == "ok"


@pytest.mark.parametrize("cls", [POPCheck, POPSCheck])
async def test_wrong_password_is_down(server: Dovecot, host: str, cls: type[POPCheck]) -> None:
    port = server.pop3s if cls.implicit_tls else server.pop3
    check = cls.from_options({"login": USER, "passwd": "wrong"}, ctx())
    result = await check.check(make_target(host, port))
    assert result.status is Status.DOWN
    assert result.reason == "auth_failed"
    assert "-ERR" in result.detail


async def test_without_login_greeting_is_enough(server: Dovecot, host: str) -> None:
    result = await POPCheck.from_options({}, ctx()).check(make_target(host, server.pop3))
    assert result.up
    assert "+OK" in result.detail


async def test_wrong_service_is_down(server: Dovecot, host: str) -> None:
    # checkport pointing at the IMAP port: the greeting is "* OK", not "+OK"
    result = await POPCheck.from_options({}, ctx()).check(make_target(host, server.imap))
    assert result.status is Status.DOWN
    assert result.reason == "protocol_error"


async def test_pops_on_plain_port_is_tls_error(server: Dovecot, host: str) -> None:
    result = await POPSCheck.from_options({}, ctx()).check(make_target(host, server.pop3))
    assert result.status is Status.DOWN
    assert result.reason == "tls_error"


async def test_pops_verifies_chain_when_asked(server: Dovecot, host: str) -> None:
    verified = {"tls_verify": "yes", "tls_cafile": server.cafile, "tls_hostname": "localhost"}
    result = await POPSCheck.from_options(verified, ctx()).check(make_target(host, server.pop3s))
    assert result.up, result
    system_cas = {"tls_verify": "yes", "tls_hostname": "localhost"}
    result = await POPSCheck.from_options(system_cas, ctx()).check(make_target(host, server.pop3s))
    assert result.reason == "tls_error"
