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
from typing import TYPE_CHECKING, ClassVar, Protocol, Self

if TYPE_CHECKING:
    import aiohttp

IPAddress = IPv4Address | IPv6Address


class Status(enum.StrEnum):
    """Whether the real passed its check."""

    UP = "up"
    DOWN = "down"


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
        return f"[{self.address}]" if self.address.version == 6 else str(self.address)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Result:
    """Outcome of one check run. `reason` is a stable token; `detail` is for humans."""

    status: Status
    reason: str  # "ok", "timeout", "refused", "tls_error", "status_mismatch", "body_mismatch", ...
    detail: str = ""
    elapsed: float = 0.0  # seconds

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
    http: aiohttp.ClientSession | None = None  # created lazily by checks.http when None
    extra: Mapping[str, str] = field(default_factory=dict)


class CheckOptionError(ValueError):
    """A check's options are invalid (raised at configuration time, never during a check)."""


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
