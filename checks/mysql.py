"""service=mysql: log in to MySQL or MariaDB, run `request`, up when it returns a row.

ldirectord runs the query through DBI with no timeout at all; healthd bounds the whole
exchange (connect, login, query, close) by the negotiate timeout. Needs asyncmy
(the `protocols` extra), imported when a configuration uses this check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

import asyncmy
from asyncmy import errors

from checks import _sql
from checks._util import classify
from checks.base import Reason, Target

# Server error codes that mean "these credentials do not get in": access denied for the
# user (1045) or the database (1044), unknown database (1049).
_AUTH_CODES: Final = frozenset({1044, 1045, 1049})
_CLIENT_CODES: Final = 2000  # 2000-2999 are client-side errors (cannot connect, lost connection)


@dataclass(frozen=True, slots=True)
class MySQLCheck(_sql.SQLCheck):
    """Up when the query returns at least one row (ldirectord check_mysql)."""

    kind: ClassVar[str] = "mysql"
    driver_errors: ClassVar[tuple[type[Exception], ...]] = (errors.MySQLError,)

    async def rows(self, target: Target) -> int:
        """Connect, run the query, count its rows and close the socket."""
        opts = self.options
        conn = await asyncmy.connect(
            host=str(target.address),
            port=target.port,
            user=opts.login,
            password=opts.passwd,
            db=opts.database or None,
            connect_timeout=opts.timeout,
            autocommit=True,
        )
        try:
            async with conn.cursor() as cursor:
                await cursor.execute(opts.query)
                return len(await cursor.fetchall())
        finally:
            conn.close()  # closes the socket at once, no QUIT round trip

    def describe(self, exc: Exception) -> tuple[Reason, str]:
        """Map a driver error to a reason: credentials, network, or a failing query."""
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        message = str(exc.args[1]) if len(exc.args) > 1 else _sql.first_line(exc)
        if code in _AUTH_CODES:
            return Reason.AUTH_FAILED, message
        if code >= _CLIENT_CODES:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, OSError | EOFError):
                return classify(cause)
            return Reason.NETWORK_ERROR, message
        return Reason.STATUS_MISMATCH, f"query failed: {message}"
