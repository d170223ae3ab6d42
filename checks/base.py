"""The check interface: Target in, Result out.

A check never raises for an expected failure, never touches IPVS and never changes health
state; it only reports what it saw. This package never imports healthd.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import ClassVar, Final, Protocol, Self

IPAddress = IPv4Address | IPv6Address


class Reason(enum.StrEnum):
    """The closed set of reason tokens a check reports (Result.reason is one of these).

    Members are strings, so `result.reason == Reason.TIMEOUT` and `result.reason == "timeout"`
    are the same test. Logs, the status dump and `healthd check` print the plain string.
    """

    OK = "ok"  # the check passed
    TIMEOUT = "timeout"  # no (complete) answer within the timeout
    REFUSED = "refused"  # the connection was refused (nothing listens on the port)
    UNREACHABLE = "unreachable"  # no route, host or network unreachable, name not resolved
    RESET = "reset"  # the peer reset or closed the connection before answering
    NETWORK_ERROR = "network_error"  # any other socket-level failure
    TLS_ERROR = "tls_error"  # handshake failed, certificate rejected
    STATUS_MISMATCH = "status_mismatch"  # wrong status/reply code (HTTP non-2xx, SMTP 5xx, ...)
    BODY_MISMATCH = "body_mismatch"  # the answer did not match `receive`
    PROTOCOL_ERROR = "protocol_error"  # the server spoke, but not the expected protocol
    AUTH_FAILED = "auth_failed"  # login/bind rejected
    EXIT_STATUS = "exit_status"  # external command exited non-zero
    EXEC_FAILED = "exec_failed"  # the check could not run (command missing, no permission)
    INTERNAL_ERROR = "internal_error"  # the check itself crashed (kept for old logs; see below)
    # healthd could not run the check (no file descriptor, no buffer, no memory, the check
    # crashed): says nothing about the real, never counted against its health
    LOCAL_ERROR = "local_error"
    # Set by healthd around the checks, never by a check itself:
    CONFIG_ERROR = "config_error"  # the check's options were rejected (CheckOptionError)
    CHECK_UNAVAILABLE = "check_unavailable"  # the check kind could not be loaded
    MAINTENANCE = "maintenance"  # forced down by a maintenancedir file


# Module-level aliases, so `from checks.base import TIMEOUT` reads naturally too.
OK: Final = Reason.OK
TIMEOUT: Final = Reason.TIMEOUT
REFUSED: Final = Reason.REFUSED
UNREACHABLE: Final = Reason.UNREACHABLE
RESET: Final = Reason.RESET
NETWORK_ERROR: Final = Reason.NETWORK_ERROR
TLS_ERROR: Final = Reason.TLS_ERROR
STATUS_MISMATCH: Final = Reason.STATUS_MISMATCH
BODY_MISMATCH: Final = Reason.BODY_MISMATCH
PROTOCOL_ERROR: Final = Reason.PROTOCOL_ERROR
AUTH_FAILED: Final = Reason.AUTH_FAILED
EXIT_STATUS: Final = Reason.EXIT_STATUS
EXEC_FAILED: Final = Reason.EXEC_FAILED
INTERNAL_ERROR: Final = Reason.INTERNAL_ERROR
LOCAL_ERROR: Final = Reason.LOCAL_ERROR
CONFIG_ERROR: Final = Reason.CONFIG_ERROR
CHECK_UNAVAILABLE: Final = Reason.CHECK_UNAVAILABLE
MAINTENANCE: Final = Reason.MAINTENANCE


class Status(enum.StrEnum):
    """Whether the real passed its check."""

    UP = "up"
    DOWN = "down"


def host_text(address: IPAddress | str) -> str:
    """Return an address as it goes into `host:port` text: IPv6 in brackets, IPv4 as is.

    Takes an address object or its text (a socket name, say); an IPv4-mapped IPv6 address
    is IPv6 and gets brackets too.
    """
    text = str(address)
    return f"[{text}]" if ":" in text else text


@dataclass(frozen=True, slots=True)
class Target:
    """One real server as a check sees it."""

    address: IPAddress
    port: int  # the port to check (checkport, else the real's port, else the service default)
    real_port: int = 0  # the real's own port, as configured (0 if omitted)
    virtual_address: IPAddress | None = None  # None for firewall-mark services
    virtual_port: int = 0
    fwmark: int = 0
    protocol: str = "tcp"  # the virtual's protocol: tcp, udp, sctp or fwm

    @property
    def host(self) -> str:
        """Return the address as it goes into a URL or a log: IPv6 in brackets."""
        return host_text(self.address)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Result:
    """Outcome of one check run. `reason` is a stable token; `detail` is for humans."""

    status: Status
    reason: str  # "ok", "timeout", "refused", "tls_error", "status_mismatch", "body_mismatch", ...
    detail: str = ""
    elapsed: float = 0.0  # seconds

    def __post_init__(self) -> None:
        # A Reason member is stored as its plain string, so results serialize anywhere.
        if type(self.reason) is not str:
            object.__setattr__(self, "reason", str(self.reason))

    @property
    def up(self) -> bool:
        return self.status is Status.UP

    @classmethod
    def ok(cls, detail: str = "", elapsed: float = 0.0) -> Result:
        return cls(Status.UP, "ok", detail, elapsed)

    @classmethod
    def down(cls, reason: str, detail: str = "", elapsed: float = 0.0) -> Result:
        return cls(Status.DOWN, reason, detail, elapsed)


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Shared resources handed to every check; owned and closed by the caller."""

    timeout: float  # the effective checktimeout or negotiatetimeout for this check
    extra: Mapping[str, str] = field(default_factory=dict)


class CheckOptionError(ValueError):
    """A check's options are invalid (raised at configuration time, never during a check).

    `option` names the offending option (e.g. "receive") so the config builder can point at
    its line; str(error) is the message alone. A single argument is taken as the message.
    """

    def __init__(self, option: str, message: str | None = None) -> None:
        if message is None:
            option, message = "", option
        super().__init__(message)
        self.option = option
        self.message = message


class Check(Protocol):
    """One kind of check, configured once, run many times."""

    kind: ClassVar[str]

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self: ...

    async def check(self, target: Target) -> Result: ...


class Stopwatch:
    """Measures the elapsed time of one check run on the monotonic clock."""

    __slots__ = ("_start",)

    def __init__(self) -> None:
        self._start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def up(self, detail: str = "") -> Result:
        return Result.ok(detail, self.elapsed)

    def down(self, reason: str, detail: str = "") -> Result:
        return Result.down(reason, detail, self.elapsed)


def timed() -> Stopwatch:
    """Start a stopwatch for one check run: `sw = timed(); ...; return sw.up()`."""
    return Stopwatch()


class CheckLoadError(LookupError):
    """A check kind cannot be loaded: unknown name, or a missing optional dependency."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class UnknownCheckError(CheckLoadError):
    """The check kind is not in the registry."""

    def __init__(self, kind: str, known: list[str]) -> None:
        super().__init__(kind, f"unknown check type {kind!r} (known: {', '.join(known)})")
        self.known = known
