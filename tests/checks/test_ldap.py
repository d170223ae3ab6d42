"""ldap and ldaps checks against a real OpenLDAP slapd on 127.0.0.1 and ::1."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import Iterator

import pytest
import trustme

import checks
from checks import CheckLoadError
from checks.base import CheckContext, CheckOptionError, Status
from checks.ldap import LDAPCheck, LDAPSCheck
from tests.checks._support import make_target
from tests.checks.servers.slapd import SUFFIX, USER_DN, USER_PASSWORD, Slapd, slapd

CHECKS = [LDAPCheck, LDAPSCheck]


@pytest.fixture(scope="module")
def server(ca: trustme.CA) -> Iterator[Slapd]:
    with slapd(ca) as running:
        yield running


def ctx(timeout: float = 5.0) -> CheckContext:
    return CheckContext(timeout=timeout)


def port_of(server: Slapd, cls: type[LDAPCheck]) -> int:
    return server.ldaps if cls.use_ssl else server.ldap


@pytest.mark.parametrize("cls", CHECKS)
async def test_anonymous_search_finds_the_base(
    server: Slapd, host: str, cls: type[LDAPCheck]
) -> None:
    check = cls.from_options({"request": f"/{SUFFIX}", "receive": "example"}, ctx())
    result = await check.check(make_target(host, port_of(server, cls)))
    assert result.status is Status.UP, result
    assert SUFFIX in result.detail


@pytest.mark.parametrize("cls", CHECKS)
async def test_bind_with_login_and_passwd(server: Slapd, host: str, cls: type[LDAPCheck]) -> None:
    options = {
        "request": USER_DN,
        "login": USER_DN,
        "passwd": USER_PASSWORD,
        "receive": "^uid=alice",
    }
    result = await cls.from_options(options, ctx()).check(make_target(host, port_of(server, cls)))
    assert result.up, result


async def test_default_request_reads_the_root_dse(server: Slapd, host: str) -> None:
    # ldirectord's default request "/" is the empty base: the server's root DSE
    result = await LDAPCheck.from_options({"request": "/"}, ctx()).check(
        make_target(host, server.ldap)
    )
    assert result.up, result


@pytest.mark.parametrize("cls", CHECKS)
async def test_wrong_password_is_auth_failed(
    server: Slapd, host: str, cls: type[LDAPCheck]
) -> None:
    options = {"request": SUFFIX, "login": USER_DN, "passwd": "wrong"}
    result = await cls.from_options(options, ctx()).check(make_target(host, port_of(server, cls)))
    assert result.status is Status.DOWN
    assert result.reason == "auth_failed"
    assert "invalidCredentials" in result.detail


async def test_login_without_passwd_binds_anonymously(server: Slapd, host: str) -> None:
    # ldirectord binds as login only when passwd is set too
    options = {"request": SUFFIX, "login": USER_DN}
    result = await LDAPCheck.from_options(options, ctx()).check(make_target(host, server.ldap))
    assert result.up, result


async def test_receive_mismatch(server: Slapd, host: str) -> None:
    options = {"request": SUFFIX, "receive": "dc=example,dc=org"}
    result = await LDAPCheck.from_options(options, ctx()).check(make_target(host, server.ldap))
    assert result.status is Status.DOWN
    assert result.reason == "body_mismatch"
    assert "does not match" in result.detail


async def test_missing_base_is_down(server: Slapd, host: str) -> None:
    options = {"request": f"ou=nobody,{SUFFIX}"}
    result = await LDAPCheck.from_options(options, ctx()).check(make_target(host, server.ldap))
    assert result.status is Status.DOWN
    assert result.reason == "body_mismatch"
    assert "noSuchObject" in result.detail


async def test_ldaps_on_the_plain_port_is_tls_error(server: Slapd, host: str) -> None:
    result = await LDAPSCheck.from_options({}, ctx()).check(make_target(host, server.ldap))
    assert result.status is Status.DOWN
    assert result.reason in ("tls_error", "reset")


async def test_ldap_on_the_tls_port_is_down(server: Slapd, host: str) -> None:
    result = await LDAPCheck.from_options({}, ctx(1.0)).check(make_target(host, server.ldaps))
    assert result.status is Status.DOWN
    assert result.reason == "reset"  # slapd hangs up on a client that does not start TLS


async def test_ldaps_verifies_when_asked(server: Slapd, host: str) -> None:
    good = {"tls_verify": "yes", "tls_cafile": server.cafile, "tls_hostname": "localhost"}
    result = await LDAPSCheck.from_options(good, ctx()).check(make_target(host, server.ldaps))
    assert result.up, result
    wrong_name = good | {"tls_hostname": "ldap.example.net"}
    result = await LDAPSCheck.from_options(wrong_name, ctx()).check(make_target(host, server.ldaps))
    assert result.reason == "tls_error"


@pytest.mark.parametrize("cls", CHECKS)
async def test_refused(closed_port: int, host: str, cls: type[LDAPCheck]) -> None:
    result = await cls.from_options({}, ctx()).check(make_target(host, closed_port))
    assert result.status is Status.DOWN
    assert result.reason == "refused"


@pytest.mark.parametrize("cls", CHECKS)
async def test_silent_server_times_out(silent_port: int, host: str, cls: type[LDAPCheck]) -> None:
    result = await cls.from_options({}, ctx(0.3)).check(make_target(host, silent_port))
    assert result.status is Status.DOWN
    assert result.reason == "timeout"


def test_invalid_base_dn_is_an_option_error() -> None:
    with pytest.raises(CheckOptionError) as info:
        LDAPCheck.from_options({"request": "/not a dn"}, ctx())
    assert info.value.option == "request"


def test_invalid_receive_is_an_option_error() -> None:
    with pytest.raises(CheckOptionError) as info:
        LDAPCheck.from_options({"receive": "("}, ctx())
    assert info.value.option == "receive"


def test_default_ports() -> None:
    assert (checks.KINDS["ldap"].port, checks.KINDS["ldaps"].port) == (389, 636)
    assert (LDAPCheck.kind, LDAPSCheck.kind) == ("ldap", "ldaps")


def test_missing_library_is_a_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # should the library be missing, the kind fails to load with the package to install
    monkeypatch.delitem(sys.modules, "checks.ldap")
    monkeypatch.setitem(sys.modules, "ldap3", None)
    with pytest.raises(CheckLoadError, match="'ldap3'"):
        checks.load("ldap")


class _CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, *args, **kwargs):
        self.submitted += 1
        return super().submit(*args, **kwargs)


async def test_a_hung_server_does_not_hold_the_default_executor(
    silent_port: int, host: str
) -> None:
    # the loop's default executor also runs getaddrinfo and reloads: ldap keeps off it
    counting = _CountingExecutor()
    asyncio.get_running_loop().set_default_executor(counting)
    result = await LDAPCheck.from_options({}, ctx(0.2)).check(make_target(host, silent_port))
    assert (result.status, result.reason) == (Status.DOWN, "timeout")
    assert counting.submitted == 0
