"""Exception types shared across healthd.

Expected failures of checks are Result values, never these; these are for configuration
problems and kernel-driver failures, which callers report and survive.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from healthd.location import Location


class HealthdError(Exception):
    """Base class of every error healthd reports to a user."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One error or warning found in a configuration, with where it was found.

    A suggestion ("did you mean ...?") is part of the message, so every output shows it.
    """

    loc: Location | None
    message: str
    severity: str = "error"  # "error" or "warning"
    ldirectord: bool = False  # ldirectord reads it otherwise, or it is doubtful (--strict: error)

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc is not None else ""
        return f"{where}{self.severity}: {self.message}"


@dataclass
class ConfigErrors(HealthdError):
    """Every diagnostic found while loading one configuration (errors and warnings)."""

    diagnostics: Sequence[Diagnostic] = field(default_factory=list)
    sources: dict[str, list[str]] = field(default_factory=dict)  # path -> lines, for carets

    def __post_init__(self) -> None:
        super().__init__(self.summary())

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.diagnostics)

    def summary(self) -> str:
        n = len(self.errors)
        return f"{n} configuration error{'s' if n != 1 else ''}"


class DriverError(HealthdError):
    """A kernel IPVS operation failed; `errno` is the kernel's error number (0 if none)."""

    def __init__(self, op: object, errno: int, message: str) -> None:
        super().__init__(message)
        self.op = op
        self.errno = errno
        self.message = message

    def __str__(self) -> str:
        return f"{self.op}: {self.message}" if self.op is not None else self.message
