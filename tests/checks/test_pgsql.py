"""pgsql check against a real PostgreSQL server on 127.0.0.1 and ::1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checks.base import CheckContext, Status
from checks.pgsql import PgSQLCheck
from tests.checks._support import make_target
from tests.checks.servers.postgres import DATABASE, PASSWORD, USER, Postgres, postgres


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with postgres() as running:
        yield running


def ctx(timeout: float = 5.0) -> CheckContext:
    return CheckContext(timeout=timeout)


def opts(**kwargs: str) -> dict[str, str]:
    base = {"login": USER, "passwd": PASSWORD, "database": DATABASE, "request": "SELECT 1"}
    return base | kwargs


async def test_query_with_rows_is_up(server: Postgres, host: str) -> None:
    check = PgSQLCheck.from_options(opts(request="/SELECT generate_series(1, 3)"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.UP, result
    assert result.detail == "3 rows"


async def test_empty_database_means_the_login_name(server: Postgres, host: str) -> None:
    check = PgSQLCheck.from_options(opts(database="", request="SELECT current_database()"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.up, result  # the database "healthd" is named after the login


async def test_no_rows_is_down(server: Postgres, host: str) -> None:
    check = PgSQLCheck.from_options(opts(request="SELECT 1 WHERE false"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "body_mismatch"


async def test_wrong_password_is_down(server: Postgres, host: str) -> None:
    check = PgSQLCheck.from_options(opts(passwd="wrong"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "auth_failed"
    assert "password" in result.detail


async def test_missing_database_is_down(server: Postgres, host: str) -> None:
    check = PgSQLCheck.from_options(opts(database="nosuchdb"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "auth_failed"
    assert "nosuchdb" in result.detail


async def test_bad_query_is_down(server: Postgres, host: str) -> None:
    check = PgSQLCheck.from_options(opts(request="SELECT * FROM no_such_table"), ctx())
    result = await check.check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "status_mismatch"
    assert "no_such_table" in result.detail


async def test_hung_query_times_out(server: Postgres, host: str) -> None:
    # ldirectord waits forever on a query that never returns; healthd stops at the timeout
    check = PgSQLCheck.from_options(opts(request="SELECT pg_sleep(2)"), ctx(0.3))
    result = await check.check(make_target(host, server.port))
    assert (result.status, result.reason) == (Status.DOWN, "timeout")
