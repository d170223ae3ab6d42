"""The engine's incremental reconcile: dirty services only, against its cached kernel view.

A transition plans only its own virtual's service and does not dump the kernel; a failed op
makes the next tick dump again; results keep flowing while a reconcile waits on the kernel.
"""

from __future__ import annotations

import asyncio
import errno
from ipaddress import ip_address

from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.types import DelDest, DestKey, Op, Protocol, ServiceKey, Table
from tests.component.support import Harness, config, events, real, virtual

SVC, OTHER = "tcp/192.0.2.10:80", "tcp/192.0.2.11:80"
R1, R2, R3 = "198.51.100.1", "198.51.100.2", "198.51.100.3"


class CountingDriver(FakeDriver):
    """A FakeDriver that counts dumps and can hold every op until `gate` is set."""

    def __init__(self, table: Table | None = None) -> None:
        super().__init__(table)
        self.dumps = 0
        self.gate: asyncio.Event | None = None

    async def dump(self) -> Table:
        self.dumps += 1
        return await super().dump()

    async def apply(self, op: Op) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await super().apply(op)


async def table_weights(driver: CountingDriver) -> dict[str, dict[str, int]]:
    """Return the table's weights without counting a dump."""
    table = await FakeDriver.dump(driver)
    return {
        str(key): {str(d.key): d.weight for d in entry.dests.values()}
        for key, entry in table.services.items()
    }


def harness(harnesses, cfg) -> tuple[Harness, CountingDriver]:
    h = Harness(cfg)
    driver = CountingDriver()
    h.driver = driver
    h.engine.kernel.driver = driver
    harnesses.append(h)
    return h, driver


def two_virtuals(**kw):
    return config(
        virtual(real(R1), real(R2), quiescent=True),
        virtual(real(R3), address="192.0.2.11", quiescent=True),
        resync_interval=30,
        **kw,
    )


async def test_a_transition_plans_only_its_service_and_does_not_dump(harnesses, logs_captured):
    h, driver = harness(harnesses, two_virtuals())
    h.script.set(R2, True, False)
    await h.start()
    dumps, mark = driver.dumps, len(driver.journal)
    other = ServiceKey(Protocol.TCP, ip_address("192.0.2.11"), 80)
    await driver.apply_raw(DelDest(other, DestKey(ip_address(R3), 80)))  # drift, by hand
    await h.clock.advance(10)
    assert h.ops(mark) == [f"edit-dest {SVC} {R2}:80 route w=0"]
    assert driver.dumps == dumps, "an incremental tick must not dump the kernel"
    assert (await table_weights(driver))[OTHER] == {}, "a service nobody marked is not planned"
    assert events(logs_captured, "ipvs.drift_detected") == []
    await h.clock.advance(20)  # the resync at t=30 dumps and repairs the drift
    assert driver.dumps == dumps + 1
    assert (await table_weights(driver))[OTHER] == {f"{R3}:80": 1}
    assert events(logs_captured, "ipvs.drift_detected")[0]["ops"] == 1


async def test_a_failed_op_makes_the_next_tick_dump_and_retry(harnesses, logs_captured):
    h, driver = harness(harnesses, two_virtuals())
    h.script.set(R2, True, False)
    h.script.set(R3, True, True, False)
    await h.start()
    dumps = driver.dumps
    driver.fail_next(errno.EPERM)
    await h.clock.advance(10)  # R2 down: its edit fails
    assert events(logs_captured, "ipvs.apply_failed")[0]["errno"] == errno.EPERM
    assert (await table_weights(driver))[SVC][f"{R2}:80"] == 1
    assert driver.dumps == dumps
    await h.clock.advance(10)  # R3 down: a tick after a failure dumps and plans everything
    assert driver.dumps == dumps + 1
    weights = await table_weights(driver)
    assert weights[SVC][f"{R2}:80"] == 0
    assert weights[OTHER][f"{R3}:80"] == 0
    await h.clock.advance(10)  # the resync finds nothing left to do: the failure was no drift
    assert events(logs_captured, "ipvs.drift_detected") == []


async def test_results_are_folded_while_a_reconcile_waits_on_the_kernel(harnesses, logs_captured):
    h, driver = harness(harnesses, two_virtuals())
    h.script.set(R2, True, False)
    h.script.set(R3, True, True, False)
    await h.start()
    driver.gate = asyncio.Event()
    await h.clock.advance(10)  # R2 down: the tick holds on the kernel
    assert (await table_weights(driver))[SVC][f"{R2}:80"] == 1
    await h.clock.advance(10)  # results still arrive and fold: R3 goes down meanwhile
    assert [e["real"] for e in events(logs_captured, "real.down")] == [f"{R2}:80", f"{R3}:80"]
    assert h.engine.snapshot()["virtuals"][1]["reals"][0]["up"] is False  # type: ignore[index]
    driver.gate.set()
    await h.clock.settle()
    weights = await table_weights(driver)
    assert weights[SVC][f"{R2}:80"] == 0
    assert weights[OTHER][f"{R3}:80"] == 0, "a change marked during a tick is reconciled next"


async def test_maintenance_marks_only_its_virtual(harnesses, tmp_path):
    h, driver = harness(harnesses, two_virtuals(maintenancedir=str(tmp_path)))
    await h.start()
    dumps, mark = driver.dumps, len(driver.journal)
    (tmp_path / R3).touch()
    await h.clock.advance(10)
    assert h.ops(mark) == [f"edit-dest {OTHER} {R3}:80 route w=0"]
    assert driver.dumps == dumps
