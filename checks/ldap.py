"""service=ldap / ldaps: bind, then read the entry named by `request` (ldirectord check_ldap).

ldap3 is a blocking library, so one check runs in a worker thread whose sockets carry the
negotiate timeout, under an asyncio deadline of the same length. Needs ldap3 (the
`protocols` extra), imported when a configuration uses this check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import re
import ssl
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Self

from checks._util import TLSSettings, compile_receive
from checks.base import CheckContext, CheckOptionError, Reason, Result, Target, timed

with warnings.catch_warnings():
    # ldap3 imports names that newer pyasn1 releases mark deprecated; nothing we can change
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.dn import parse_dn

# ldap3 blocks, so each exchange runs in a thread; and a thread whose server hangs stays busy
# past the check's timeout until ldap3's own socket timeouts end it. Those threads come from
# this pool, not from the event loop's default executor, which name lookups (getaddrinfo),
# config reloads and other daemon work share: hung LDAP servers must not stall them.
_POOL: Final = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="ldap")

# Substrings of ldap3's socket error texts (it keeps no errno) and the reasons they mean.
_SOCKET_ERRORS = (
    ("refused", Reason.REFUSED),
    ("timed out", Reason.TIMEOUT),
    ("unreachable", Reason.UNREACHABLE),
    ("ssl", Reason.TLS_ERROR),
    ("terminated by server", Reason.RESET),
    ("reset", Reason.RESET),
)


@dataclass(frozen=True, slots=True)
class LDAPCheck:
    """Up when a base-scope search of `request` returns exactly one entry whose DN matches."""

    kind: ClassVar[str] = "ldap"
    use_ssl: ClassVar[bool] = False
    base: str
    login: str
    passwd: str
    receive: re.Pattern[str] | None
    timeout: float
    tls: TLSSettings

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check from request (the base DN), receive, login and passwd."""
        # ldirectord: the base is the request without its leading "/" (default: the root DSE)
        base = options.get("request", "").removeprefix("/")
        if base:
            try:
                parse_dn(base)
            except LDAPException as exc:
                raise CheckOptionError("request", f"invalid base DN {base!r}: {exc}") from exc
        return cls(
            base=base,
            login=options.get("login", ""),
            passwd=options.get("passwd", ""),
            receive=compile_receive(options),
            timeout=ctx.timeout,
            tls=TLSSettings.from_options(options),
        )

    async def check(self, target: Target) -> Result:
        """Connect, bind, search; the whole exchange is bounded by the timeout."""
        sw = timed()
        try:
            async with asyncio.timeout(self.timeout):
                loop = asyncio.get_running_loop()
                reason, detail = await loop.run_in_executor(
                    _POOL, self._exchange, str(target.address), target.port
                )
        except TimeoutError:
            return sw.down(Reason.TIMEOUT, f"no answer within {self.timeout:g}s")
        return sw.up(detail) if reason is Reason.OK else sw.down(reason, detail)

    def _exchange(self, host: str, port: int) -> tuple[Reason, str]:
        """Run the blocking LDAP exchange (in a worker thread); never raises for a failure."""
        server = ldap3.Server(
            host,
            port=port,
            use_ssl=self.use_ssl,
            tls=self._tls(host) if self.use_ssl else None,
            get_info=ldap3.NONE,
            connect_timeout=self.timeout,
        )
        # ldirectord: a simple bind as login only when both login and passwd are set,
        # otherwise an anonymous bind
        both = bool(self.login and self.passwd)
        conn = ldap3.Connection(
            server,
            user=self.login if both else None,
            password=self.passwd if both else None,
            # ldap3 packs this into SO_RCVTIMEO as whole seconds; the asyncio deadline is exact
            receive_timeout=max(1, math.ceil(self.timeout)),
            auto_referrals=False,
            raise_exceptions=False,
        )
        try:
            return self._session(conn)
        except (LDAPException, OSError) as exc:
            return _socket_reason(exc)
        finally:
            _close(conn)

    def _session(self, conn: ldap3.Connection) -> tuple[Reason, str]:
        conn.open()
        if not conn.bind():
            return Reason.AUTH_FAILED, f"bind failed: {_describe(conn.result)}"
        conn.search(self.base, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[])
        dns = [str(e["dn"]) for e in conn.response or () if e.get("type") == "searchResEntry"]
        # ldirectord: exactly one entry, else "No answer received"
        if len(dns) != 1:
            return (
                Reason.BODY_MISMATCH,
                f"{len(dns)} entries at {self.base!r}: {_describe(conn.result)}",
            )
        if self.receive is not None and not self.receive.search(dns[0]):
            return Reason.BODY_MISMATCH, f"DN {dns[0]!r} does not match {self.receive.pattern!r}"
        return Reason.OK, f"found {dns[0]!r}"

    def _tls(self, host: str) -> _ContextTLS:
        # with verification the name checked is tls_hostname, else the real's address
        name = self.tls.hostname or (host if self.tls.verify else None)
        return _ContextTLS(self.tls.context(), name)


class LDAPSCheck(LDAPCheck):
    """service=ldaps: the same check over implicit TLS."""

    kind: ClassVar[str] = "ldaps"
    use_ssl: ClassVar[bool] = True


class _ContextTLS(ldap3.Tls):  # type: ignore[misc]  # ldap3 has no type hints
    """ldap3 TLS through the shared SSLContext, which also checks the name when verifying.

    ldap3's own name check uses the deprecated ssl.match_hostname and leaks the socket when
    it fails; the standard library's check happens inside the handshake instead.
    """

    def __init__(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        super().__init__()
        self._context = context
        self._server_hostname = server_hostname

    def wrap_socket(self, connection: ldap3.Connection, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=self._server_hostname,
        )


def _describe(result: Mapping[str, object] | None) -> str:
    if not result:
        return "no result"
    text = str(result.get("description", "")) or "error"
    message = str(result.get("message") or "").strip()
    return f"{text} ({message})" if message else text


def _socket_reason(exc: BaseException) -> tuple[Reason, str]:
    text = str(exc).strip("()'\",") or type(exc).__name__
    lowered = text.lower()
    for needle, reason in _SOCKET_ERRORS:
        if needle in lowered:
            return reason, text
    return Reason.PROTOCOL_ERROR, text


def _close(conn: ldap3.Connection) -> None:
    """Unbind and make sure the socket is closed, whatever state ldap3 left it in."""
    sock = conn.socket
    try:
        if not conn.closed:
            conn.unbind()
    except (LDAPException, OSError):
        pass
    if sock is not None:
        sock.close()
