"""imap and imaps checks: greeting `* OK`, LOGIN when a login is set, LOGOUT.

ldirectord uses Net::IMAP::Simple[::SSL]: connect (and login) must succeed. imaps is implicit
TLS; a `* PREAUTH` greeting counts as up, a `* BYE` greeting as down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Self

from checks import _lines
from checks._util import TLSSettings
from checks.base import CheckContext, Result, Target


def quote(text: str) -> str:
    """Return `text` as an IMAP quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class IMAPCheck:
    """Reads the greeting and, with a login, sends LOGIN; then LOGOUT."""

    kind: ClassVar[str] = "imap"
    default_port: ClassVar[int] = 143
    implicit_tls: ClassVar[bool] = False

    def __init__(self, timeout: float, login: str, passwd: str, tls: TLSSettings | None) -> None:
        self.timeout = timeout
        self.login = login
        self.passwd = passwd
        self.tls = tls

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        tls = _lines.tls_settings(options) if cls.implicit_tls else None
        return cls(ctx.timeout, options.get("login", ""), options.get("passwd", ""), tls)

    async def check(self, target: Target) -> Result:
        return await _lines.run(target, self.timeout, self._session, tls=self.tls)

    async def _session(self, stream: _lines.LineStream) -> str:
        greeting = await stream.expect(("* OK", "* PREAUTH"), "greeting")
        if self.login:
            await stream.send(f"a1 LOGIN {quote(self.login)} {quote(self.passwd)}")
            line = await tagged(stream, "a1")
            if not line.startswith("a1 OK"):
                raise _lines.ProtocolFailure(_lines.AUTH_FAILED, f"login: {_lines.shorten(line)}")
        await _lines.close_quietly(stream, "a2 LOGOUT")
        return "logged in" if self.login else _lines.shorten(greeting)


async def tagged(stream: _lines.LineStream, tag: str) -> str:
    """Return the tagged completion line for `tag`, skipping untagged data."""
    while True:
        line = await stream.readline()
        if line.startswith(tag + " "):
            return line


class IMAPSCheck(IMAPCheck):
    """The imap check over implicit TLS."""

    kind: ClassVar[str] = "imaps"
    default_port: ClassVar[int] = 993
    implicit_tls: ClassVar[bool] = True
