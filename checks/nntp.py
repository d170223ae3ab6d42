"""nntp check: the server greets with 200 or 201 (service available), then QUIT.

ldirectord accepts any greeting that starts with `2` and has no connect timeout (a `TimeOut`
typo); healthd bounds the whole exchange by the negotiate timeout.
"""

from __future__ import annotations

from typing import ClassVar

from checks import _lines


class NNTPCheck(_lines.SessionCheck):
    """Reads the greeting; 200 (posting allowed) or 201 (no posting) is up."""

    kind: ClassVar[str] = "nntp"

    async def session(self, stream: _lines.LineStream) -> str:
        greeting = await stream.expect_reply((200, 201), "greeting")
        await _lines.close_quietly(stream, "QUIT")
        return _lines.shorten(greeting)
