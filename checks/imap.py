"""imap and imaps checks: greeting `* OK`, LOGIN when a login is set, LOGOUT.

ldirectord uses Net::IMAP::Simple[::SSL]: connect (and login) must succeed. imaps is implicit
TLS; a `* PREAUTH` greeting counts as up, a `* BYE` greeting as down.
"""

from __future__ import annotations

from typing import ClassVar

from checks import _lines


def quote(text: str) -> str:
    """Return `text` as an IMAP quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class IMAPCheck(_lines.LoginCheck):
    """Reads the greeting and, with a login, sends LOGIN; then LOGOUT."""

    kind: ClassVar[str] = "imap"
    implicit_tls: ClassVar[bool] = False

    async def session(self, stream: _lines.LineStream) -> str:
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
    implicit_tls: ClassVar[bool] = True
