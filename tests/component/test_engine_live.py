"""The engine on the real clock with the real connect check against a loopback TCP server.

Short intervals keep every wait well under a second; the table is the in-memory FakeDriver.
"""

from __future__ import annotations

import asyncio

from healthd.engine import Engine
from healthd.ipvs.fake import FakeDriver
from healthd.model import CheckSpec, CheckType
from healthd.plugins import Plugin
from tests.component.support import config, real, virtual


class Transitions(Plugin):
    """Listener that lets a test wait for the next transition of a real."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()

    async def on_transition(self, virtual, real, up, result, reason) -> None:
        self.queue.put_nowait((up, reason))

    async def next(self) -> tuple[bool, str]:
        async with asyncio.timeout(1.0):
            return await self.queue.get()


async def test_a_real_that_stops_listening_leaves_and_returns():
    async def accept(reader, writer):
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spec = CheckSpec(checktype=CheckType.CONNECT, checktimeout=0.2)
    cfg = config(virtual(real("127.0.0.1", port), check=spec, checkinterval=0.05, quiescent=True))
    driver = FakeDriver()
    seen = Transitions()
    engine = Engine(cfg, driver, listeners=[seen])
    task = asyncio.create_task(engine.run())

    async def weight() -> int:
        await asyncio.sleep(0)  # let the reconcile that follows the transition finish
        table = await driver.dump()
        (dest,) = [d for e in table.services.values() for d in e.dests.values()]
        return dest.weight

    try:
        assert await seen.next() == (True, "ok")
        assert await weight() == 1
        server.close()
        await server.wait_closed()
        assert await seen.next() == (False, "refused")
        assert await weight() == 0
        snap = engine.snapshot()
        last = snap["virtuals"][0]["reals"][0]["last"]  # type: ignore[index]
        assert last["reason"] == "refused"
        server = await asyncio.start_server(accept, "127.0.0.1", port)
        assert await seen.next() == (True, "ok")
        assert await weight() == 1
    finally:
        await engine.shutdown()
        await asyncio.wait_for(task, 1.0)
        server.close()
        await server.wait_closed()
    assert (await driver.dump()).services == {}  # cleanstop=yes by default
