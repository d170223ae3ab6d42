"""smtp and submission checks: greeting 220, EHLO (HELO if refused), QUIT.

ldirectord: Net::SMTP->new (banner and EHLO) then quit; request, receive and login are unused.
"""

from __future__ import annotations

from typing import ClassVar

from checks import _lines

# ldirectord: Net::SMTP's default hello name
HELLO_NAME = "localhost.localdomain"


class SMTPCheck(_lines.SessionCheck):
    """Reads the 220 greeting and says EHLO; the server is up when both succeed."""

    kind: ClassVar[str] = "smtp"

    async def session(self, stream: _lines.LineStream) -> str:
        greeting = await stream.expect_reply((220,), "greeting")
        await stream.send(f"EHLO {HELLO_NAME}")
        code, _ = await stream.reply()
        if code != 250:
            # Net::SMTP falls back to HELO when EHLO is refused
            await stream.command(f"HELO {HELLO_NAME}", (250,), "HELO", _lines.STATUS_MISMATCH)
        await _lines.close_quietly(stream, "QUIT")
        return _lines.shorten(greeting)


class SubmissionCheck(SMTPCheck):
    """The smtp check on the message submission port."""

    kind: ClassVar[str] = "submission"
