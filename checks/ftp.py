"""ftp check: greeting 220, USER/PASS, then with a request RETR the file and match receive.

ldirectord (Net::FTP) ignores login failures and, with an empty receive, reports a dead server
as up. healthd requires the greeting and the login; without a request (or with the default
`/`) a successful login is up, with one the download must succeed and match receive.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import ClassVar, Self

from checks import _lines
from checks._util import compile_receive
from checks.base import CheckContext, Result, Target

_PASV = re.compile(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)")
_EPSV = re.compile(r"\(([^\d])\1\1(\d+)\1\)")


class FTPCheck:
    """Logs in and, when a file is requested, downloads it over a passive data connection."""

    kind: ClassVar[str] = "ftp"

    def __init__(
        self, timeout: float, login: str, passwd: str, path: str, receive: re.Pattern[str] | None
    ) -> None:
        self.timeout = timeout
        self.login = login or "anonymous"
        self.passwd = passwd
        self.path = path
        self.receive = receive

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        path = options.get("request", "")
        return cls(
            ctx.timeout,
            options.get("login", ""),
            options.get("passwd", ""),
            "" if path == "/" else path,
            compile_receive(options),
        )

    async def check(self, target: Target) -> Result:
        return await _lines.run(target, self.timeout, lambda s: self._session(s, target))

    async def _session(self, stream: _lines.LineStream, target: Target) -> str:
        await stream.expect_reply((220,), "greeting")
        await self._login(stream)
        if not self.path:
            await _lines.close_quietly(stream, "QUIT")
            return "logged in"
        # ldirectord: cwd "/", binary, pasv, get(request)
        await stream.send("CWD /")
        await stream.reply()
        await stream.command("TYPE I", (200,), "TYPE I", _lines.STATUS_MISMATCH)
        content = await self._retrieve(stream, target)
        await _lines.close_quietly(stream, "QUIT")
        if self.receive is not None and not self.receive.search(content):
            raise _lines.ProtocolFailure(
                _lines.BODY_MISMATCH, f"{self.path}: no match for {self.receive.pattern!r}"
            )
        return f"{self.path}: {len(content)} bytes"

    async def _login(self, stream: _lines.LineStream) -> None:
        await stream.send(f"USER {self.login}")
        code, text = await stream.reply()
        if code == 331:
            await stream.send(f"PASS {self.passwd}")
            code, text = await stream.reply()
        if code != 230:
            raise _lines.ProtocolFailure(_lines.AUTH_FAILED, f"login: {_lines.shorten(text)}")

    async def _retrieve(self, stream: _lines.LineStream, target: Target) -> str:
        port = await self._passive_port(stream)
        reader, writer = await asyncio.open_connection(str(target.address), port)
        try:
            await stream.send(f"RETR {self.path}")
            await stream.expect_reply((125, 150), "RETR")
            data = await read_all(reader)
        finally:
            writer.close()
        await stream.reply()  # 226 transfer complete (or 4xx when we stopped reading early)
        return data.decode("utf-8", "replace")

    async def _passive_port(self, stream: _lines.LineStream) -> int:
        # EPSV works over IPv4 and IPv6; the address in a PASV reply is ignored (we use the
        # real's address), which also keeps a misconfigured server from redirecting us.
        await stream.send("EPSV")
        code, text = await stream.reply()
        if code == 229 and (found := _EPSV.search(text)):
            return int(found.group(2))
        text = await stream.command("PASV", (227,), "PASV", _lines.STATUS_MISMATCH)
        numbers = _PASV.search(text)
        if numbers is None:
            raise _lines.ProtocolFailure(_lines.PROTOCOL_ERROR, f"PASV: {_lines.shorten(text)}")
        return int(numbers.group(5)) * 256 + int(numbers.group(6))


async def read_all(reader: asyncio.StreamReader) -> bytes:
    """Read until EOF, at most MAX_BODY bytes."""
    chunks: list[bytes] = []
    size = 0
    while size < _lines.MAX_BODY and (chunk := await reader.read(65536)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[: _lines.MAX_BODY]
