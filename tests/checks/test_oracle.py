"""oracle check: what can be tested without an Oracle server (none is packaged for Debian or
PyPI): option handling and a non-Oracle server here, refused and silent servers in
test_sql.py. docs/COMPAT.md says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import checks
from checks.base import CheckContext, CheckOptionError, Status
from checks.oracle import OracleCheck
from tests.checks._support import make_target


def ctx(timeout: float = 3.0) -> CheckContext:
    return CheckContext(timeout=timeout)


def opts(**kwargs: str) -> dict[str, str]:
    base = {
        "login": "scott",
        "passwd": "tiger",
        "database": "ORCL",
        "request": "/SELECT 1 FROM dual",
    }
    return base | kwargs


@pytest.fixture
async def hangup_port(host: str) -> AsyncIterator[int]:
    """A port on `host` whose server answers every connection with a line of HTTP and hangs up."""

    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(answer, host, 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def test_a_server_that_is_not_oracle_is_down(hangup_port: int, host: str) -> None:
    result = await OracleCheck.from_options(opts(), ctx()).check(make_target(host, hangup_port))
    assert result.status is Status.DOWN
    assert result.reason == "protocol_error"
    assert "closed the connection" in result.detail


@pytest.mark.parametrize("missing", ["login", "request", "database"])
def test_login_request_and_sid_are_required(missing: str) -> None:
    with pytest.raises(CheckOptionError) as info:
        OracleCheck.from_options(opts(**{missing: ""}), ctx())
    assert info.value.option == missing


def test_options_are_kept() -> None:
    check = OracleCheck.from_options(opts(), ctx(7.0))
    assert check.options.query == "SELECT 1 FROM dual"  # ldirectord drops the leading "/"
    assert (check.options.login, check.options.database, check.options.timeout) == (
        "scott",
        "ORCL",
        7.0,
    )
    assert checks.KINDS["oracle"].port == 1521
