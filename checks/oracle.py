"""service=oracle: log in to Oracle, run `request`, up when it returns a row.

python-oracledb in thin mode (pure Python, no Oracle client libraries). `database` is the
SID, as in ldirectord's `dbi:Oracle:sid=<database>`. ldirectord has no timeout at all here;
healthd bounds connect, login and query by the negotiate timeout. Needs oracledb (the
`protocols` extra), imported when a configuration uses this check.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Self

import oracledb

from checks import _sql
from checks._util import classify
from checks.base import CheckContext, CheckOptionError, Reason, Target

CLOSE_GRACE: Final = 1.0  # seconds the logoff may take

# Server errors that mean "these credentials do not get in": invalid username/password,
# account locked, the listener does not know the SID or service.
_AUTH_CODES: Final = frozenset({"ORA-01017", "ORA-28000", "ORA-12505", "ORA-12514"})


@dataclass(frozen=True, slots=True)
class OracleCheck(_sql.SQLCheck):
    """Up when the query returns at least one row (ldirectord check_oracle)."""

    kind: ClassVar[str] = "oracle"
    driver_errors: ClassVar[tuple[type[Exception], ...]] = (oracledb.Error,)

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check from login, passwd, database (the SID) and request (the SQL)."""
        sql = _sql.SQLOptions.from_options(options, ctx)
        if not sql.database:
            raise CheckOptionError("database", "the oracle check needs database (the SID)")
        return cls(sql)

    async def rows(self, target: Target) -> int:
        """Connect, run the query, count its rows and log off (bounded by CLOSE_GRACE)."""
        opts = self.options
        conn = await oracledb.connect_async(
            user=opts.login,
            password=opts.passwd,
            host=str(target.address),
            port=target.port,
            sid=opts.database,
            tcp_connect_timeout=opts.timeout,
            retry_count=0,
        )
        try:
            with conn.cursor() as cursor:
                await cursor.execute(opts.query)
                return len(await cursor.fetchall())
        finally:
            # a polite close talks to the server; bound it, so a server that stopped
            # answering cannot hold the check past its deadline
            with contextlib.suppress(TimeoutError, oracledb.Error, OSError):
                async with asyncio.timeout(CLOSE_GRACE):
                    await conn.close()

    def describe(self, exc: Exception) -> tuple[Reason, str]:
        """Map a driver error to a reason: credentials, network, or a failing query."""
        error = exc.args[0] if exc.args else None
        code = str(getattr(error, "full_code", ""))
        message = _sql.first_line(exc)
        if code in _AUTH_CODES:
            return Reason.AUTH_FAILED, message
        cause = exc.__cause__
        if isinstance(cause, OSError | EOFError):
            return classify(cause)
        if code.startswith("DPY-"):  # the driver's own errors: connection and protocol trouble
            detail = " ".join(str(exc).split("\n")[:2])
            return Reason.PROTOCOL_ERROR, detail[:300]
        return Reason.STATUS_MISMATCH, f"query failed: {message}"
