"""checktype=connect: a TCP connection to the real's check port, closed at once.

Nothing is sent. For UDP virtuals ldirectord pings instead; that choice belongs to the engine.
The connection is made on a bare socket driven by loop callbacks (checks._exchange), the
cheapest way there is, since connect checks run by the thousand.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Self

from checks._exchange import Exchange
from checks._util import classify
from checks.base import CheckContext, Reason, Result, Target, timed
from checks.deadline import within

# per target, worked out once: the socket family, the address to connect to, the up detail
_Plan = tuple[int, tuple[str, int], str]


@dataclass(frozen=True, slots=True)
class ConnectCheck:
    """Up when a TCP connection completes within the timeout (ldirectord check_connect)."""

    kind: ClassVar[str] = "connect"
    timeout: float
    _plans: dict[Target, _Plan] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check; connect takes no options besides the timeout."""
        return cls(timeout=ctx.timeout)

    async def check(self, target: Target) -> Result:
        """Connect to target.address:target.port, then close the connection."""
        sw = timed()
        try:
            family, address, detail = self._plans[target]
        except KeyError:
            family, address, detail = self._plans[target] = _plan(target)
        try:
            async with within(self.timeout):
                exchange = Exchange(asyncio.get_running_loop(), family)
                exchange.start(address)
                await exchange.done
        except (OSError, TimeoutError) as exc:
            reason, detail = classify(exc)
            if reason is Reason.TIMEOUT:
                detail = f"no connection within {self.timeout:g}s"
            return sw.down(reason, detail)
        return sw.up(detail)


def _plan(target: Target) -> _Plan:
    family = socket.AF_INET6 if target.address.version == 6 else socket.AF_INET
    return family, (str(target.address), target.port), f"connected to {target}"
