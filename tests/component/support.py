"""Helpers for engine and scheduler tests: virtual time, the in-memory table, scripted checks."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any, ClassVar

from checks.base import CheckContext, Result, Target
from healthd.clock import FakeClock
from healthd.engine import Engine
from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.types import Table
from healthd.model import CheckSpec, CheckType, Config, Proto, Real, Virtual


class Script:
    """What the stub checks answer: per real address, a list of outcomes consumed in order.

    An outcome is True (up), False (down, reason "refused"), a Result, or an exception to
    raise. The last outcome repeats. `calls` counts runs per (kind, address).
    """

    def __init__(self) -> None:
        self.plan: dict[str, list[Any]] = {}
        self.calls: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.targets: list[Target] = []
        self.options: list[dict[str, str]] = []

    def set(self, address: str, *outcomes: Any) -> None:
        self.plan[address] = list(outcomes)

    def next(self, kind: str, target: Target) -> Result:
        address = str(target.address)
        self.calls[(kind, address)] += 1
        self.targets.append(target)
        outcomes = self.plan.get(address, [True])
        outcome = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, Result):
            return outcome
        return Result.ok() if outcome else Result.down("refused", "connection refused")

    def count(self, address: str, kind: str | None = None) -> int:
        return sum(n for (k, a), n in self.calls.items() if a == address and kind in (None, k))


def stub_factory(script: Script):
    """Return a check_factory whose every kind is a stub following `script`."""

    def load(kind: str):
        class StubCheck:
            kind_name: ClassVar[str] = kind

            def __init__(self, options: dict[str, str]) -> None:
                self.options = options

            @classmethod
            def from_options(cls, options, ctx: CheckContext):
                script.options.append(dict(options))
                return cls(dict(options))

            async def check(self, target: Target) -> Result:
                return script.next(kind, target)

        StubCheck.kind = kind  # type: ignore[attr-defined]
        return StubCheck

    return load


def real(address: str, port: int = 80, **kw: Any) -> Real:
    return Real(ip_address(address), port, **kw)


def virtual(*reals: Real, address: str = "192.0.2.10", port: int = 80, **kw: Any) -> Virtual:
    kw.setdefault("check", CheckSpec(checktype=CheckType.CONNECT))
    kw.setdefault("proto", Proto.TCP)
    return Virtual(address=ip_address(address), port=port, reals=tuple(reals), **kw)


def config(*virtuals: Virtual, **kw: Any) -> Config:
    return Config(path="/etc/ha.d/test.cf", virtuals=tuple(virtuals), **kw)


class Harness:
    """An Engine on FakeClock + FakeDriver + scripted checks, started and stopped by tests."""

    def __init__(self, cfg: Config, *, table: Table | None = None, **engine_kw: Any) -> None:
        self.clock = FakeClock()
        self.driver = FakeDriver(table)
        self.script = Script()
        engine_kw.setdefault("jitter", lambda: 0.0)
        self.engine = Engine(
            cfg,
            self.driver,
            clock=self.clock,
            check_factory=stub_factory(self.script),
            **engine_kw,
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.engine.run())
        await self.clock.settle()

    async def stop(self) -> None:
        await self.engine.shutdown()
        if self.task is not None:
            await asyncio.wait_for(self.task, 1.0)

    def ops(self, start: int = 0) -> list[str]:
        return [str(op) for op in self.driver.journal[start:]]

    async def weights(self) -> dict[str, dict[str, int]]:
        table = await self.driver.dump()
        return {
            str(key): {str(d.key): d.weight for d in entry.dests.values()}
            for key, entry in table.services.items()
        }


def events(captured: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in captured if e["event"] == name]


async def until(predicate: Callable[[], object]) -> None:
    """Wait until predicate() holds, polling every 10 ms; fail after about 2 s."""
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")
