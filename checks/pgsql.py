"""service=pgsql: log in to PostgreSQL, run `request`, up when it returns a row.

ldirectord runs the query through DBI with no timeout at all; healthd bounds the whole
exchange (connect, login, query, close) by the negotiate timeout. Needs asyncpg
(the `protocols` extra), imported when a configuration uses this check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

import asyncpg

from checks import _sql
from checks._util import classify
from checks.base import CheckContext, Reason, Result, Target, timed


@dataclass(frozen=True, slots=True)
class PgSQLCheck:
    """Up when the query returns at least one row (ldirectord check_pgsql)."""

    kind: ClassVar[str] = "pgsql"
    default_port: ClassVar[int] = 5432
    options: _sql.SQLOptions

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check from login, passwd, database and request (the SQL)."""
        return cls(_sql.SQLOptions.from_options(options, ctx))

    async def check(self, target: Target) -> Result:
        """Connect, run the query once, count its rows, disconnect."""
        sw = timed()
        opts = self.options
        try:
            async with asyncio.timeout(opts.timeout):
                rows = await self._rows(target)
        except TimeoutError:
            return _sql.timed_out(sw, opts.timeout)
        except asyncpg.InvalidAuthorizationSpecificationError as exc:
            return sw.down(Reason.AUTH_FAILED, _sql.first_line(exc))
        except asyncpg.InvalidCatalogNameError as exc:
            return sw.down(Reason.AUTH_FAILED, _sql.first_line(exc))
        except asyncpg.PostgresError as exc:
            return sw.down(Reason.STATUS_MISMATCH, f"query failed: {_sql.first_line(exc)}")
        except (OSError, asyncpg.InterfaceError) as exc:
            reason, detail = classify(exc)
            return sw.down(reason, detail)
        return _sql.judge(sw, rows)

    async def _rows(self, target: Target) -> int:
        opts = self.options
        conn = await asyncpg.connect(
            host=str(target.address),
            port=target.port,
            user=opts.login,
            password=opts.passwd,
            # ldirectord: an empty database leaves the choice to the driver (the login's name)
            database=opts.database or None,
            timeout=opts.timeout,
        )
        try:
            return len(await conn.fetch(opts.query))
        finally:
            # terminate() closes the socket at once; a polite close() could wait on a dead server
            conn.terminate()
