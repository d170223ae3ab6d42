"""The engine's side of the check rules: the in-flight bound from the config, and the real's
own request/receive and checkport reaching the check it runs.

Virtual time, the in-memory table and stub checks, as in test_engine.py.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from checks.base import CheckContext, Result, Target
from healthd.engine import Engine
from healthd.model import CheckSpec, Config, ServiceName
from tests.component.support import Harness, config, real, virtual


class Gate:
    """Stub checks that block until released, counting how many run at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.peak = 0
        self.started = 0
        self.seen: list[tuple[dict[str, str], Target]] = []

    def load(self, kind: str):
        gate = self

        class Blocking:
            kind_name: ClassVar[str] = kind

            def __init__(self, options: dict[str, str]) -> None:
                self.options = options

            @classmethod
            def from_options(cls, options, ctx: CheckContext):
                return cls(dict(options))

            async def check(self, target: Target) -> Result:
                gate.seen.append((self.options, target))
                gate.started += 1
                gate.running += 1
                gate.peak = max(gate.peak, gate.running)
                try:
                    await gate.release.wait()
                finally:
                    gate.running -= 1
                return Result.ok()

        return Blocking


def gated(cfg: Config, gate: Gate) -> Harness:
    """Return a Harness whose engine runs the gate's checks."""
    h = Harness(cfg)
    h.engine = Engine(cfg, h.driver, clock=h.clock, check_factory=gate.load, jitter=lambda: 0.0)
    return h


async def test_max_in_flight_from_the_config_bounds_the_checks_running(harnesses):
    reals = [real(f"198.51.100.{i}") for i in range(1, 9)]
    gate = Gate()
    h = gated(config(virtual(*reals), max_in_flight=3), gate)
    harnesses.append(h)
    await h.start()
    await h.clock.advance(0)  # every first check is due at t=0 (jitter 0)
    assert (gate.running, gate.peak) == (3, 3)  # eight reals due, three allowed
    gate.release.set()
    await h.clock.settle()
    assert gate.started == 8  # the others ran as slots freed
    assert gate.peak == 3


async def test_the_reals_own_request_receive_and_the_checkport_reach_the_check(harnesses):
    spec = CheckSpec(service=ServiceName("http"), request="/ok.html", receive="ok", checkport=8080)
    plain = real("198.51.100.1")
    own = real("198.51.100.2", request="/own.html", receive="mine")
    gate = Gate()
    gate.release.set()
    h = gated(config(virtual(plain, own, check=spec)), gate)
    harnesses.append(h)
    await h.start()
    await h.clock.advance(0)
    seen = {str(target.address): (opts, target) for opts, target in gate.seen}
    opts, target = seen["198.51.100.1"]
    assert (opts["request"], opts["receive"], target.port) == ("/ok.html", "ok", 8080)
    opts, target = seen["198.51.100.2"]
    assert (opts["request"], opts["receive"], target.port) == ("/own.html", "mine", 8080)
    assert target.real_port == 80
