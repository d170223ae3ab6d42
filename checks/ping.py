"""checktype=ping: ICMP echo over IPv4 and IPv6, up to `checkcount` attempts.

Raw sockets need root or CAP_NET_RAW; without them an unprivileged ICMP datagram socket is
tried, then the system `ping` command. The first reply means up.
"""

from __future__ import annotations

import asyncio
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from checks._icmp import PingNotPermitted, pinger
from checks._util import classify
from checks.base import (
    CheckContext,
    CheckOptionError,
    Reason,
    Result,
    Stopwatch,
    Target,
    timed,
)


@dataclass(frozen=True, slots=True)
class PingCheck:
    """Up on the first echo reply; each of `count` attempts waits `timeout` seconds."""

    kind: ClassVar[str] = "ping"
    count: int
    timeout: float

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check; `checkcount` (deprecated in ldirectord) is the number of attempts."""
        text = options.get("checkcount") or "1"
        try:
            count = int(text)
        except ValueError:
            raise CheckOptionError("checkcount", f"checkcount must be a number: {text!r}") from None
        if count < 1:
            raise CheckOptionError("checkcount", "checkcount must be at least 1")
        return cls(count=count, timeout=ctx.timeout)

    async def check(self, target: Target) -> Result:
        """Ping target.address until a reply comes or the attempts run out."""
        sw = timed()
        reason, detail = Reason.TIMEOUT, ""
        for attempt in range(1, self.count + 1):
            try:
                await pinger(target.address.version).ping(target.address, self.timeout)
            except PingNotPermitted as exc:
                return await self._ping_command(target, sw) or sw.down(
                    Reason.EXEC_FAILED, f"{exc} and no ping command was found"
                )
            except (OSError, TimeoutError) as exc:
                reason, detail = classify(exc)
                continue
            return sw.up(f"echo reply from {target.address} (attempt {attempt}/{self.count})")
        if reason is Reason.TIMEOUT:
            detail = f"no echo reply in {self.count} attempt(s) of {self.timeout:g}s"
        return sw.down(reason, detail)

    async def _ping_command(self, target: Target, sw: Stopwatch) -> Result | None:
        """Fall back to the system ping command; None when there is none."""
        command = shutil.which("ping")
        if command is None:
            return None
        wait = str(max(1, math.ceil(self.timeout)))
        args = [command, f"-{target.address.version}", "-n", "-q", "-c", str(self.count)]
        args += ["-W", wait, str(target.address)]
        try:
            code = await _run(args, self.count * self.timeout + 1)
        except OSError as exc:
            return sw.down(Reason.EXEC_FAILED, f"cannot run {command}: {exc.strerror or exc}")
        if code == 0:
            return sw.up(f"echo reply from {target.address} (ping command)")
        if code is None:
            return sw.down(Reason.TIMEOUT, "ping command timed out")
        return sw.down(Reason.TIMEOUT, f"no echo reply (ping exit {code})")


async def _run(args: list[str], seconds: float) -> int | None:
    """Run a command quietly; return its exit status, or None if it was killed on timeout."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(seconds):
            return await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
