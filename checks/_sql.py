"""Shared option handling and result mapping for the SQL checks (mysql, pgsql, oracle).

ldirectord's check_sql: connect with login/passwd/database, run `request` as SQL and call the
server up when it returns at least one row. `receive` is not used. Nothing here opens a socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from checks.base import CheckContext, CheckOptionError, Reason, Result, Stopwatch


@dataclass(frozen=True, slots=True)
class SQLOptions:
    """What every SQL check needs: credentials, database, the query and the timeout."""

    login: str
    passwd: str
    database: str
    query: str
    timeout: float

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> SQLOptions:
        """Read login, passwd, database and request; login and request are required."""
        # ldirectord: the request loses its leading "/" (the config default is "/", i.e. empty)
        query = options.get("request", "").strip()
        query = query.removeprefix("/").strip()
        login = options.get("login", "")
        # ldirectord: "Must specify a login and request string for MySQL, Oracle and
        # PostgreSQL checks" and the real stays down; healthd says so once, at config time
        if not login:
            raise CheckOptionError("login", "the mysql, pgsql and oracle checks need a login")
        if not query:
            raise CheckOptionError("request", "the mysql, pgsql and oracle checks need a request")
        return cls(
            login, options.get("passwd", ""), options.get("database", ""), query, ctx.timeout
        )


def judge(sw: Stopwatch, rows: int) -> Result:
    """Map the number of rows the query returned to a Result (ldirectord: up if rows > 0)."""
    if rows > 0:
        return sw.up(f"{rows} row{'s' if rows != 1 else ''}")
    return sw.down(Reason.BODY_MISMATCH, "the query returned no rows")


def timed_out(sw: Stopwatch, timeout: float) -> Result:
    """Return the Result for a server that did not answer within the timeout."""
    return sw.down(Reason.TIMEOUT, f"no answer within {timeout:g}s")


def first_line(exc: BaseException) -> str:
    """Return the first line of an exception's message (driver errors can be long)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
