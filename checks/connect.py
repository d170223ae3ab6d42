"""checktype=connect: a TCP connection to the real's check port, closed at once.

Nothing is sent. For UDP virtuals ldirectord pings instead; that choice belongs to the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from checks._util import classify
from checks.base import CheckContext, Reason, Result, Target, timed


@dataclass(frozen=True, slots=True)
class ConnectCheck:
    """Up when a TCP connection completes within the timeout (ldirectord check_connect)."""

    kind: ClassVar[str] = "connect"
    timeout: float

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check; connect takes no options besides the timeout."""
        return cls(timeout=ctx.timeout)

    async def check(self, target: Target) -> Result:
        """Connect to target.address:target.port, then close the connection."""
        sw = timed()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                transport, _ = await loop.create_connection(
                    asyncio.Protocol, str(target.address), target.port
                )
        except (OSError, TimeoutError) as exc:
            reason, detail = classify(exc)
            if reason is Reason.TIMEOUT:
                detail = f"no connection within {self.timeout:g}s"
            return sw.down(reason, detail)
        transport.close()
        return sw.up(f"connected to {target}")
