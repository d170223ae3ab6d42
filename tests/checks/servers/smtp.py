"""A real SMTP server (aiosmtpd) on a loopback port, run in the test's own event loop.

It records every message it accepts, and can be told to refuse EHLO and HELO (a server that
greets but will not talk to us).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    content: str


@dataclass
class Recorder:
    """aiosmtpd handler: stores messages; refuses the greeting exchange if asked."""

    refuse_hello: bool = False
    messages: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        if self.refuse_hello:
            return ["550 not today"]
        session.host_name = hostname  # a new-style hook must record the greeting itself
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        if self.refuse_hello:
            return "550 not today"
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.content or b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), text))
        self.arrived.set()
        return "250 OK"


@dataclass
class SMTPServer:
    """A running aiosmtpd: where it listens and what it received."""

    host: str
    port: int
    recorder: Recorder


@contextlib.asynccontextmanager
async def smtp_server(host: str, *, refuse_hello: bool = False) -> AsyncIterator[SMTPServer]:
    """Serve SMTP with aiosmtpd on host, port 0; yield where it listens."""
    recorder = Recorder(refuse_hello=refuse_hello)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(recorder, hostname="mx.example.org"), host, 0)
    try:
        yield SMTPServer(host, int(server.sockets[0].getsockname()[1]), recorder)
    finally:
        server.close()
        await server.wait_closed()
