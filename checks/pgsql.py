"""service=pgsql: log in to PostgreSQL, run `request`, up when it returns a row.

ldirectord runs the query through DBI with no timeout at all; healthd bounds the whole
exchange (connect, login, query, close) by the negotiate timeout. Needs asyncpg
(the `protocols` extra), imported when a configuration uses this check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import asyncpg

from checks import _sql
from checks._util import classify
from checks.base import Reason, Target


@dataclass(frozen=True, slots=True)
class PgSQLCheck(_sql.SQLCheck):
    """Up when the query returns at least one row (ldirectord check_pgsql)."""

    kind: ClassVar[str] = "pgsql"
    driver_errors: ClassVar[tuple[type[Exception], ...]] = (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    )

    async def rows(self, target: Target) -> int:
        """Connect, run the query, count its rows and drop the connection."""
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

    def describe(self, exc: Exception) -> tuple[Reason, str]:
        """Map a driver error to a reason: credentials, network, or a failing query."""
        auth = (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidCatalogNameError)
        if isinstance(exc, auth):
            return Reason.AUTH_FAILED, _sql.first_line(exc)
        if isinstance(exc, asyncpg.PostgresError):
            return Reason.STATUS_MISMATCH, f"query failed: {_sql.first_line(exc)}"
        return classify(exc)  # InterfaceError: the connection, not the server, failed
