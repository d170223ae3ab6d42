"""One exchange on a bare non-blocking TCP socket, driven by event-loop callbacks.

The cheapest way to talk to a real on an event loop: no task, no transport, no stream and no
future per step, only the loop's reader and writer callbacks on the socket. It serves the
checks that run by the thousand on an address literal without TLS: plain HTTP (connect, send
a prepared request, read until the response is whole) and TCP connect (connect, then close).
Anything needing TLS or a name lookup goes through asyncio's transports instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable


def _never(_: bytearray) -> bool:
    return False


class Exchange:
    """One request and its response on a bare non-blocking socket, driven by loop callbacks.

    The loop calls back when the socket is writable (connected, or room to send) and when it
    is readable. `done` completes when `ready(buf)` holds, the peer closes or the socket
    fails; cancelling it (the caller's timeout) closes the socket. With nothing to send,
    `done` completes as soon as the connection is made.
    """

    __slots__ = (
        "_data",
        "_fd",
        "_loop",
        "_ready",
        "_sent",
        "_sock",
        "buf",
        "closed",
        "done",
        "error",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        family: int,
        data: bytes = b"",
        ready: Callable[[bytearray], bool] = _never,
    ) -> None:
        self._loop = loop
        # non-blocking from birth: one system call fewer than setblocking(False) after
        self._sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        self._fd = self._sock.fileno()
        self._data = data
        self._sent = 0
        self._ready = ready
        self.buf = bytearray()
        self.closed = False
        self.error: OSError | None = None
        self.done: asyncio.Future[None] = loop.create_future()
        self.done.add_done_callback(self._close)  # also on cancel: the socket never leaks

    def start(self, address: tuple[str, int]) -> None:
        """Begin connecting; a refusal known at once fails `done` before the first await."""
        sock = self._sock
        try:
            sock.connect(address)
        except (BlockingIOError, InterruptedError):
            self._loop.add_writer(self._fd, self._connected)
        except OSError as exc:
            self._fail(exc)
        else:
            self._send()

    def _connected(self) -> None:
        self._loop.remove_writer(self._fd)
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(OSError(err, os.strerror(err)))
        else:
            self._send()

    def _send(self) -> None:
        if not self._data:
            self._finish()  # a connect check: the handshake was all it wanted
            return
        try:
            self._sent += self._sock.send(self._data[self._sent :])
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._fail(exc)
            return
        if self._sent < len(self._data):
            self._loop.add_writer(self._fd, self._more)
        else:
            self._loop.add_reader(self._fd, self._received)

    def _more(self) -> None:
        self._loop.remove_writer(self._fd)
        self._send()

    def _received(self) -> None:
        try:
            data = self._sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # e.g. a reset: judged like connection_lost(exc)
            self.error, self.closed = exc, True
            self._finish()
            return
        if not data:
            self.closed = True
            self._finish()
            return
        self.buf += data
        if self._ready(self.buf):
            self._finish()

    def _fail(self, exc: OSError) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        self._close()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
        self._close()

    def _close(self, _: object = None) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._fd = -1
            self._sock.close()
