"""checktype=external: run `checkcommand` with ldirectord's four arguments; exit 0 means up.

No shell; the command runs in its own session (process group), and the whole group is killed
on timeout, so a check script's children cannot outlive it (see checks._process).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from checks import _process
from checks._process import arguments as arguments
from checks.base import CheckContext, Result, Target


@dataclass(frozen=True, slots=True)
class ExternalCheck:
    """Up when checkcommand exits 0 within the timeout (ldirectord check_external)."""

    kind: ClassVar[str] = "external"
    command: str
    timeout: float

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check from `checkcommand` (a path; no shell, no embedded arguments)."""
        return cls(command=_process.checkcommand(options, cls.kind), timeout=ctx.timeout)

    async def check(self, target: Target) -> Result:
        """Run the command once and map its exit status to a Result."""
        return await _process.run([self.command, *arguments(target)], self.timeout, self.command)
