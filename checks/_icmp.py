"""ICMP echo over asyncio: one socket per event loop and address family, shared by every ping.

Replies are matched to waiters by (address, identifier, sequence). The socket is opened on
demand and closed as soon as no ping is waiting, so nothing outlives the checks that used it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import os
import socket
import struct
import weakref
from typing import Final

from checks.base import IPAddress

_ECHO_REQUEST: Final = {4: 8, 6: 128}
_ECHO_REPLY: Final = {4: 0, 6: 129}
_PAYLOAD: Final = b"healthd-ping".ljust(56, b".")


class PingNotPermitted(Exception):
    """Neither a raw nor a datagram ICMP socket may be opened by this process."""


def checksum(data: bytes) -> int:
    """Return the Internet checksum (RFC 1071) of data."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(version: int, ident: int, seq: int) -> bytes:
    """Build an ICMP (v4) or ICMPv6 echo request; the kernel fills the ICMPv6 checksum."""
    header = struct.pack("!BBHHH", _ECHO_REQUEST[version], 0, 0, ident, seq)
    if version == 4:
        csum = checksum(header + _PAYLOAD)
        header = struct.pack("!BBHHH", _ECHO_REQUEST[version], 0, csum, ident, seq)
    return header + _PAYLOAD


def parse_reply(version: int, data: bytes, raw: bool) -> tuple[int, int] | None:
    """Return (identifier, sequence) of an echo reply, or None for any other packet."""
    # A raw IPv4 socket hands us the IP header too; IPv6 and datagram sockets do not.
    offset = (data[0] & 0x0F) * 4 if raw and version == 4 and data else 0
    if len(data) < offset + 8:
        return None
    kind, _, _, ident, seq = struct.unpack_from("!BBHHH", data, offset)
    if kind != _ECHO_REPLY[version]:
        return None
    return ident, seq


def open_socket(version: int) -> tuple[socket.socket, bool]:
    """Open a raw ICMP socket, else an unprivileged datagram one; return it and `raw`."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    proto = socket.IPPROTO_ICMP if version == 4 else socket.IPPROTO_ICMPV6
    for kind, raw in ((socket.SOCK_RAW, True), (socket.SOCK_DGRAM, False)):
        try:
            sock = socket.socket(family, kind, proto)
        except PermissionError:
            continue  # raw needs CAP_NET_RAW; datagram needs net.ipv4.ping_group_range
        sock.setblocking(False)
        if raw:
            _pass_only_echo_replies(sock, version)
        return sock, raw
    raise PingNotPermitted("ICMP sockets are not permitted (need root or CAP_NET_RAW)")


# linux/icmp.h and linux/icmpv6.h: a set bit in the filter blocks that ICMP type
_SOL_RAW: Final = 255
_ICMP_FILTER: Final = 1
_ICMPV6_FILTER: Final = 1


def _pass_only_echo_replies(sock: socket.socket, version: int) -> None:
    """Ask the kernel to hand a raw socket echo replies only (fewer wake-ups under load)."""
    # A failure only costs efficiency: parse_reply still skips every other packet.
    with contextlib.suppress(OSError):
        if version == 4:
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("=I", 0xFFFFFFFF & ~1))
        else:
            words = [0xFFFFFFFF] * 8
            words[_ECHO_REPLY[6] >> 5] &= ~(1 << (_ECHO_REPLY[6] & 31))
            sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMPV6_FILTER, struct.pack("=8I", *words))


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _sendto(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, packet: bytes, addr: tuple[str, int]
) -> None:
    """Send one datagram, waiting for room if the socket is full (uvloop has no sock_sendto)."""
    while True:
        try:
            sock.sendto(packet, addr)
        except (BlockingIOError, InterruptedError):
            pass
        else:
            return
        room: asyncio.Future[None] = loop.create_future()
        loop.add_writer(sock.fileno(), _wake, room)
        try:
            await room
        finally:
            loop.remove_writer(sock.fileno())


class Pinger:
    """Sends echo requests for one address family and routes replies to their waiters."""

    def __init__(self, version: int) -> None:
        self.version = version
        self._ident = int.from_bytes(os.urandom(2), "big")
        self._seq = itertools.count(int.from_bytes(os.urandom(2), "big"))
        self._waiters: dict[tuple[IPAddress, int], asyncio.Future[None]] = {}
        self._sock: socket.socket | None = None
        self._raw = True

    async def ping(self, address: IPAddress, seconds: float) -> None:
        """Send one echo request and wait for its reply; raise TimeoutError or OSError."""
        loop = asyncio.get_running_loop()
        seq = next(self._seq) & 0xFFFF
        key = (address, seq)
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters[key] = waiter
        try:
            sock = self._open(loop)
            packet = echo_request(self.version, self._ident, seq)
            async with asyncio.timeout(seconds):
                await _sendto(loop, sock, packet, (str(address), 0))
                await waiter
        finally:
            del self._waiters[key]
            if not self._waiters:
                self._close(loop)

    def _open(self, loop: asyncio.AbstractEventLoop) -> socket.socket:
        if self._sock is None:
            self._sock, self._raw = open_socket(self.version)
            loop.add_reader(self._sock.fileno(), self._on_readable)
        return self._sock

    def _close(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sock is not None:
            loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _on_readable(self) -> None:
        while self._sock is not None:
            try:
                data, source = self._sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # an asynchronous ICMP error on the socket; the waiter times out
            reply = parse_reply(self.version, data, self._raw)
            if reply is None:
                continue
            ident, seq = reply
            # A datagram socket's identifier is chosen by the kernel, which filters for us.
            if self._raw and ident != self._ident:
                continue
            with contextlib.suppress(ValueError):
                address = ipaddress.ip_address(source[0].split("%")[0])
                waiter = self._waiters.get((address, seq))
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)


_pingers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Pinger]]
_pingers = weakref.WeakKeyDictionary()


def pinger(version: int) -> Pinger:
    """Return the running loop's Pinger for IP version 4 or 6."""
    per_loop = _pingers.setdefault(asyncio.get_running_loop(), {})
    if version not in per_loop:
        per_loop[version] = Pinger(version)
    return per_loop[version]
