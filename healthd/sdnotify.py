"""systemd's notification protocol (sd_notify) over the NOTIFY_SOCKET datagram socket.

Written here rather than pulled in as a dependency: one datagram per message, KEY=VALUE lines.
Outside systemd (no NOTIFY_SOCKET) every call is a no-op. Sending never raises: a lost
notification must not take the daemon down.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

from healthd import logs

log = logs.get_logger("healthd.sdnotify")

# a datagram socket whose reader lags (10 queued by default) blocks sendto; this bounds how
# long the daemon's event loop may wait before the message is dropped with a warning
SEND_TIMEOUT = 1.0


def _address(raw: str) -> str | bytes:
    """Return the socket address for a NOTIFY_SOCKET value; '@' means the abstract namespace."""
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


def monotonic_usec() -> int:
    """Return CLOCK_MONOTONIC in microseconds, as systemd wants with RELOADING=1."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Sends state changes to the service manager; a no-op when not started by systemd."""

    def __init__(self, socket_path: str | None, watchdog_usec: int | None = None) -> None:
        self.socket_path = socket_path or None
        self.watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Return a notifier for NOTIFY_SOCKET and WATCHDOG_USEC (WATCHDOG_PID must be us)."""
        env = os.environ if environ is None else environ
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if pid is None or pid == str(os.getpid()):
            try:
                usec = int(env.get("WATCHDOG_USEC", ""))
            except ValueError:
                usec = None
        return cls(env.get("NOTIFY_SOCKET"), usec)

    @property
    def enabled(self) -> bool:
        return self.socket_path is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Return seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None."""
        if self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2_000_000

    def send(self, **fields: str | int) -> bool:
        """Send one message of KEY=VALUE lines; return whether it went out."""
        if self.socket_path is None:
            return False
        text = "\n".join(f"{key.upper()}={value}" for key, value in fields.items()) + "\n"
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.settimeout(SEND_TIMEOUT)
            self._sock.sendto(text.encode(), _address(self.socket_path))
        except OSError as exc:
            log.warning(logs.SDNOTIFY_FAILED, path=self.socket_path, detail=str(exc))
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd start-up (or a reload) is complete."""
        if status is None:
            return self.send(ready=1)
        return self.send(ready=1, status=status)

    def reloading(self) -> bool:
        """Tell systemd a reload has begun (Type=notify-reload wants MONOTONIC_USEC too)."""
        return self.send(reloading=1, monotonic_usec=monotonic_usec())

    def stopping(self) -> bool:
        """Tell systemd the daemon is shutting down."""
        return self.send(stopping=1)

    def status(self, text: str) -> bool:
        """Set the free-text status shown by `systemctl status`."""
        return self.send(status=text)

    def watchdog(self) -> bool:
        """Ping the watchdog."""
        return self.send(watchdog=1)

    def close(self) -> None:
        """Close the socket (a later send opens it again)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
