"""sip check: an OPTIONS request over UDP or TCP (the virtual's protocol); 200 OK is up.

The request has ldirectord's headers (Via, Max-Forwards, To, From, Call-ID, CSeq, Contact,
Accept); healthd names the real transport in Via and skips provisional 1xx answers.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Mapping
from typing import ClassVar, Self

from checks import _lines
from checks.base import CheckContext, Result, Target, host_text


def options_request(login: str, transport: str, local: tuple[str, int]) -> bytes:
    """Return the OPTIONS request ldirectord sends, from the local address `local`."""
    host = host_text(local[0])
    lines = [
        f"OPTIONS sip:{login} SIP/2.0",
        f"Via: SIP/2.0/{transport} {host}:{local[1]};branch=z9hG4bK{secrets.token_hex(8)}",
        "Max-Forwards: 70",
        f"To: <sip:{login}>",
        f"From: <sip:{login}>;tag={secrets.token_hex(4)}",
        f"Call-ID: {secrets.token_hex(8)}",
        "CSeq: 63104 OPTIONS",
        f"Contact: <sip:{login}>",
        "Accept: application/sdp",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def judge(status_line: str) -> str | None:
    """Return a detail for `SIP/2.0 200 OK`, None for a provisional answer, else fail."""
    if status_line.startswith("SIP/2.0 200 OK"):
        return status_line
    if status_line.startswith("SIP/2.0 1"):
        return None
    reason = _lines.STATUS_MISMATCH if status_line.startswith("SIP/2.0 ") else _lines.PROTOCOL_ERROR
    raise _lines.ProtocolFailure(reason, _lines.shorten(status_line) or "empty answer")


class SIPCheck:
    """Sends OPTIONS sip:<login> and expects `SIP/2.0 200 OK`."""

    kind: ClassVar[str] = "sip"

    def __init__(self, timeout: float, login: str) -> None:
        self.timeout = timeout
        self.login = login

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        # ldirectord: login defaults to ldirectord@<hostname> (the config fills it in)
        login = options.get("login", "") or f"ldirectord@{socket.gethostname()}"
        return cls(ctx.timeout, login)

    async def check(self, target: Target) -> Result:
        if target.protocol == "udp":

            def build(local: tuple[str, int]) -> bytes:
                return options_request(self.login, "UDP", local)

            def first_line(data: bytes) -> str | None:
                return judge(data.decode("utf-8", "replace").split("\r\n", 1)[0].strip())

            return await _lines.run_udp(target, self.timeout, build, first_line)
        return await _lines.run(target, self.timeout, self._session)

    async def _session(self, stream: _lines.LineStream) -> str:
        local = stream.writer.get_extra_info("sockname")
        stream.writer.write(options_request(self.login, "TCP", (str(local[0]), int(local[1]))))
        while True:
            detail = judge(await stream.readline())
            if detail is not None:
                return detail
            while await stream.readline():  # skip the provisional answer's headers
                pass
