"""pop and pops checks: greeting +OK, USER/PASS when a login is set, QUIT.

ldirectord (Mail::POP3Client) reports a dead server as up when no login is set; healthd always
requires the greeting, so a refused, silent or broken server is down. pops is implicit TLS.
"""

from __future__ import annotations

from typing import ClassVar

from checks import _lines


class POPCheck(_lines.LoginCheck):
    """Reads the +OK greeting and, with a login, authenticates with USER and PASS."""

    kind: ClassVar[str] = "pop"
    implicit_tls: ClassVar[bool] = False

    async def session(self, stream: _lines.LineStream) -> str:
        greeting = await stream.expect(("+OK",), "greeting")
        if self.login:
            await self._authenticate(stream)
        await _lines.close_quietly(stream, "QUIT")
        return "logged in" if self.login else _lines.shorten(greeting)

    async def _authenticate(self, stream: _lines.LineStream) -> None:
        await stream.send(f"USER {self.login}")
        line = await stream.readline()
        if line.startswith("+OK"):
            await stream.send(f"PASS {self.passwd}")
            line = await stream.readline()
        if not line.startswith("+OK"):
            raise _lines.ProtocolFailure(_lines.AUTH_FAILED, f"login: {_lines.shorten(line)}")


class POPSCheck(POPCheck):
    """The pop check over implicit TLS."""

    kind: ClassVar[str] = "pops"
    implicit_tls: ClassVar[bool] = True
