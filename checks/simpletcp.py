"""simpletcp check: send the request (`\\n` escapes become newlines), match receive per line.

Over TCP the request is followed by a half-close, as ldirectord does; over UDP it is one
datagram and the answer is one datagram. ldirectord with an empty receive reuses Perl's last
successful pattern, so a dead server may look up; healthd then only requires that the
connection opens and the request is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Self

from checks import _lines
from checks._util import compile_receive
from checks.base import CheckContext, Result, Target


def unescape(request: str) -> str:
    """Return the request as sent: leading `/` dropped, literal `\\n` turned into newlines."""
    # ldirectord: substr($request, 1) drops the `/` the config parser put in front
    if request.startswith("/"):
        request = request[1:]
    return request.replace("\\n", "\n")


class SimpleTCPCheck:
    """Sends a request and looks for a reply line matching receive."""

    kind: ClassVar[str] = "simpletcp"

    def __init__(self, timeout: float, request: str, receive: re.Pattern[str] | None) -> None:
        self.timeout = timeout
        self.request = request
        self.receive = receive

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        request = unescape(options.get("request", ""))
        return cls(ctx.timeout, request, compile_receive(options))

    async def check(self, target: Target) -> Result:
        if target.protocol == "udp":
            payload = self.request.encode()
            return await _lines.run_udp(target, self.timeout, lambda _: payload, self._judge)
        return await _lines.run(target, self.timeout, self._session)

    async def _session(self, stream: _lines.LineStream) -> str:
        stream.writer.write(self.request.encode())
        await stream.writer.drain()
        if self.receive is None:
            return f"sent {len(self.request)} bytes"
        if stream.writer.can_write_eof():
            stream.writer.write_eof()
        while True:
            try:
                line = await stream.readline()
            except _lines.ProtocolFailure as exc:
                if exc.reason == _lines.CLOSED:
                    raise self._mismatch() from None
                raise
            if self.receive.search(line):
                return _lines.shorten(line)

    def _judge(self, data: bytes) -> str:
        if self.receive is None:
            return f"{len(data)} bytes"
        for line in data.decode("utf-8", "replace").splitlines():
            if self.receive.search(line):
                return _lines.shorten(line)
        raise self._mismatch()

    def _mismatch(self) -> _lines.ProtocolFailure:
        assert self.receive is not None
        return _lines.ProtocolFailure(
            _lines.BODY_MISMATCH, f"no line matches {self.receive.pattern!r}"
        )
