"""mysql check against a real MariaDB server on 127.0.0.1 and ::1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checks.base import CheckContext, Status
from checks.mysql import MySQLCheck
from tests.checks._support import make_target
from tests.checks.servers.mariadb import DATABASE, PASSWORD, USER, MariaDB, mariadb


@pytest.fixture(scope="module")
def server() -> Iterator[MariaDB]:
    with mariadb() as running:
        yield running


def ctx(timeout: float = 5.0) -> CheckContext:
    return CheckContext(timeout=timeout)


def opts(**kwargs: str) -> dict[str, str]:
    base = {"login": USER, "passwd": PASSWORD, "database": DATABASE, "request": "SELECT 1"}
    return base | kwargs


async def test_query_with_rows_is_up(server: MariaDB, host: str) -> None:
    check = MySQLCheck.from_options(opts(request="/SELECT * FROM pool"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.UP, result
    assert result.detail == "2 rows"


async def test_enabled_row_is_up(server: MariaDB, host: str) -> None:
    # the use ldirectord's documentation suggests: a table that switches reals on and off
    check = MySQLCheck.from_options(opts(request="SELECT * FROM pool WHERE enabled=1"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.up, result
    assert result.detail == "1 row"


async def test_without_database_names_are_qualified(server: MariaDB, host: str) -> None:
    check = MySQLCheck.from_options(opts(database="", request="SELECT * FROM healthd.pool"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.up, result


async def test_no_rows_is_down(server: MariaDB, host: str) -> None:
    check = MySQLCheck.from_options(opts(request="SELECT * FROM pool WHERE enabled=2"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "body_mismatch"


async def test_wrong_password_is_down(server: MariaDB, host: str) -> None:
    check = MySQLCheck.from_options(opts(passwd="wrong"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "auth_failed"
    assert "Access denied" in result.detail


async def test_missing_database_is_down(server: MariaDB, host: str) -> None:
    check = MySQLCheck.from_options(opts(database="nosuchdb"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "auth_failed"
    assert "nosuchdb" in result.detail


async def test_bad_query_is_down(server: MariaDB, host: str) -> None:
    check = MySQLCheck.from_options(opts(request="SELECT * FROM no_such_table"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "status_mismatch"
    assert "no_such_table" in result.detail


async def test_hung_query_times_out(server: MariaDB, host: str) -> None:
    # ldirectord waits forever on a query that never returns; healthd stops at the timeout
    check = MySQLCheck.from_options(opts(request="SELECT SLEEP(2)"), ctx(0.3))
    result = await check.check(make_target(host, server.port))
    assert (result.status, result.reason) == (Status.DOWN, "timeout")
