"""service=radius: an Access-Request with login/passwd/secret; up on Access-Accept (RFC 2865).

The protocol is a few lines, so it is spoken directly: User-Password hidden with MD5, a
Message-Authenticator (RFC 3579) on every request, the Response Authenticator checked on
every answer. The request is sent again within the timeout until an answer arrives.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final, Self

from checks._lines import Datagrams
from checks._util import classify
from checks.base import CheckContext, CheckOptionError, Reason, Result, Target, timed

ACCESS_REQUEST: Final = 1
ACCESS_ACCEPT: Final = 2
ACCESS_REJECT: Final = 3
ACCESS_CHALLENGE: Final = 11
USER_NAME: Final = 1
USER_PASSWORD: Final = 2
NAS_IDENTIFIER: Final = 32
MESSAGE_AUTHENTICATOR: Final = 80
BAD_SIGNATURE: Final = -1  # verify_response: our answer, but signed with another secret
TRIES: Final = 3  # sends of the same request within the timeout
_NAMES: Final = {ACCESS_ACCEPT: "Access-Accept", ACCESS_REJECT: "Access-Reject"}


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """Return User-Password as sent: padded to 16-byte blocks, each XORed with an MD5 chain."""
    size = max(16, (len(password) + 15) // 16 * 16)
    padded = password.ljust(size, b"\0")
    out = b""
    previous = authenticator
    for i in range(0, len(padded), 16):
        key = hashlib.md5(secret + previous).digest()
        block = bytes(a ^ b for a, b in zip(padded[i : i + 16], key, strict=True))
        out += block
        previous = block
    return out


def attribute(kind: int, value: bytes) -> bytes:
    """Encode one attribute: type, length, value."""
    return struct.pack("!BB", kind, len(value) + 2) + value


def access_request(ident: int, login: str, passwd: str, secret: bytes) -> tuple[bytes, bytes]:
    """Return (packet, request authenticator) for an Access-Request."""
    authenticator = secrets.token_bytes(16)
    attrs = (
        attribute(USER_NAME, login.encode())
        + attribute(USER_PASSWORD, hide_password(passwd.encode(), secret, authenticator))
        + attribute(NAS_IDENTIFIER, b"healthd")
    )
    placeholder = attribute(MESSAGE_AUTHENTICATOR, b"\0" * 16)
    length = 20 + len(attrs) + len(placeholder)
    packet = (
        struct.pack("!BBH", ACCESS_REQUEST, ident, length) + authenticator + attrs + placeholder
    )
    signature = hmac.new(secret, packet, hashlib.md5).digest()
    return packet[:-16] + signature, authenticator


def verify_response(data: bytes, ident: int, authenticator: bytes, secret: bytes) -> int | None:
    """Return the response code if `data` answers our request and is signed with `secret`.

    None: not an answer to this request. BAD_SIGNATURE: an answer to it that fails the
    Response Authenticator check (the two sides do not share the same secret).
    """
    if len(data) < 20:
        return None
    code, got_ident, length = struct.unpack("!BBH", data[:4])
    if got_ident != ident or not 20 <= length <= len(data):
        return None
    data = data[:length]
    expected = hashlib.md5(data[:4] + authenticator + data[20:] + secret).digest()
    return code if hmac.compare_digest(expected, data[4:20]) else BAD_SIGNATURE


class _Client(Datagrams):
    """The answers on a connected UDP socket (an ICMP error ends the wait), and a count of
    those signed with another secret."""

    def __init__(self) -> None:
        super().__init__()
        self.unsigned = 0  # answers that failed the Response Authenticator check


@dataclass(frozen=True, slots=True)
class RadiusCheck:
    """Up when the real answers Access-Accept (ldirectord check_radius)."""

    kind: ClassVar[str] = "radius"
    login: str
    passwd: str
    secret: bytes
    timeout: float

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check from login, passwd and secret (login and secret are required)."""
        login, secret = options.get("login", ""), options.get("secret", "")
        if not login:
            raise CheckOptionError("login", "the radius check needs a login")
        if not secret:
            raise CheckOptionError("secret", "the radius check needs the shared secret")
        passwd = options.get("passwd", "")
        if len(passwd.encode()) > 128:
            raise CheckOptionError("passwd", "a RADIUS password has at most 128 bytes")
        return cls(login, passwd, secret.encode(), ctx.timeout)

    async def check(self, target: Target) -> Result:
        """Send the request (again, up to TRIES times) until a signed answer arrives."""
        sw = timed()
        ident = secrets.randbelow(256)
        packet, authenticator = access_request(ident, self.login, self.passwd, self.secret)
        loop = asyncio.get_running_loop()
        transport: asyncio.DatagramTransport | None = None
        client: _Client | None = None
        try:
            async with asyncio.timeout(self.timeout):
                transport, client = await loop.create_datagram_endpoint(
                    _Client, remote_addr=(str(target.address), target.port)
                )
                code = await self._exchange(transport, client, packet, ident, authenticator)
        except TimeoutError:
            if client is not None and client.unsigned:
                detail = "the answer fails the Response Authenticator check (wrong secret?)"
                return sw.down(Reason.PROTOCOL_ERROR, detail)
            return sw.down(Reason.TIMEOUT, f"no answer within {self.timeout:g}s")
        except OSError as exc:
            reason, detail = classify(exc)
            return sw.down(reason, detail)
        finally:
            if transport is not None:
                transport.close()
        if code == ACCESS_ACCEPT:
            return sw.up("Access-Accept")
        if code == ACCESS_REJECT:
            return sw.down(Reason.AUTH_FAILED, "Access-Reject")
        return sw.down(
            Reason.STATUS_MISMATCH, f"{_NAMES.get(code, f'code {code}')}, not Access-Accept"
        )

    async def _exchange(
        self,
        transport: asyncio.DatagramTransport,
        client: _Client,
        packet: bytes,
        ident: int,
        auth: bytes,
    ) -> int:
        interval = self.timeout / TRIES
        while True:
            transport.sendto(packet)
            try:
                async with asyncio.timeout(interval):
                    while True:
                        answer = await client.next()
                        code = verify_response(answer, ident, auth, self.secret)
                        if code == BAD_SIGNATURE:
                            client.unsigned += 1
                        elif code is not None:
                            return code
                        # a stray or wrongly signed datagram: keep waiting for the right one
            except TimeoutError:
                continue  # resend; the outer deadline ends the loop
