"""CountingDriver: any IPVSDriver, counting its ops and errors and keeping the last dump.

The metrics read these at scrape time (healthd.web.metrics): ops applied and refused by
kind, dumps and failed dumps, and the last table dumped with its traffic counters and when
it was read, so a scrape never dumps the kernel itself. Nothing here changes what the
driver does; errors pass through unchanged.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from healthd.errors import DriverError
from healthd.ipvs.driver import IPVSDriver
from healthd.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    Op,
    Table,
)

OP_NAMES: dict[type, str] = {
    AddService: "add_service",
    EditService: "edit_service",
    DelService: "del_service",
    AddDest: "add_dest",
    EditDest: "edit_dest",
    DelDest: "del_dest",
}


class CountingDriver:
    """Wraps a driver; `ops`/`op_errors` by op kind, `dumps`/`dump_errors`, `last_dump`."""

    def __init__(self, driver: IPVSDriver, *, now: Callable[[], float] = time.time) -> None:
        self.driver = driver
        self._now = now
        self.ops: Counter[str] = Counter()
        self.op_errors: Counter[str] = Counter()
        self.dumps = 0
        self.dump_errors = 0
        self.dump_seconds = 0.0  # the last successful dump's duration
        self.last_dump: Table | None = None
        self.last_dump_at: float | None = None  # wall clock

    async def dump(self) -> Table:
        start = time.perf_counter()
        try:
            table = await self.driver.dump()
        except DriverError:
            self.dump_errors += 1
            raise
        self.dumps += 1
        self.dump_seconds = time.perf_counter() - start
        self.last_dump, self.last_dump_at = table, self._now()
        return table

    async def apply(self, op: Op) -> None:
        name = OP_NAMES[type(op)]
        try:
            await self.driver.apply(op)
        except DriverError:
            self.op_errors[name] += 1
            raise
        self.ops[name] += 1

    async def aclose(self) -> None:
        await self.driver.aclose()
