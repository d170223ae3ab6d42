"""What the SQL checks (mysql, pgsql, oracle) share: options, the check's run, its results.

ldirectord's check_sql: connect with login/passwd/database, run `request` as SQL and call the
server up when it returns at least one row. `receive` is not used. SQLCheck bounds the whole
exchange by the timeout and maps failures; each subclass only talks to its driver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from checks._util import classify
from checks.base import CheckContext, CheckOptionError, Reason, Result, Stopwatch, Target, timed


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


@dataclass(frozen=True, slots=True)
class SQLCheck:
    """Up when the query returns at least one row; subclasses run it with their driver."""

    kind: ClassVar[str]
    driver_errors: ClassVar[tuple[type[Exception], ...]]  # what describe() maps
    options: SQLOptions

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check from login, passwd, database and request (the SQL)."""
        return cls(SQLOptions.from_options(options, ctx))

    async def check(self, target: Target) -> Result:
        """Connect, run the query once, count its rows, disconnect: all within the timeout."""
        sw = timed()
        try:
            async with asyncio.timeout(self.options.timeout):
                rows = await self.rows(target)
        except TimeoutError:
            return timed_out(sw, self.options.timeout)
        except self.driver_errors as exc:
            return sw.down(*self.describe(exc))
        except OSError as exc:
            return sw.down(*classify(exc))
        return judge(sw, rows)

    async def rows(self, target: Target) -> int:
        """Run the query on `target` and return the number of rows it gave."""
        raise NotImplementedError

    def describe(self, exc: Exception) -> tuple[Reason, str]:
        """Map one of `driver_errors` to a reason: credentials, network, or a failing query."""
        raise NotImplementedError


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
