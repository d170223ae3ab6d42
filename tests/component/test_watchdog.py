"""systemd's watchdog over a real sd_notify datagram socket: fed while the engine makes progress.

A stand-in engine whose counters stop, the real Engine on a driver that hangs, and the real
Engine's counters under virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

from healthd.daemon import Daemon, Request
from healthd.engine import Engine
from healthd.ipvs.fake import FakeDriver
from healthd.model import CheckSpec, CheckType, Config
from healthd.plugins import Plugin
from healthd.sdnotify import Notifier
from healthd.watchdog import Progress
from tests.component.support import (
    Harness,
    Script,
    config,
    real,
    stub_factory,
    until,
    virtual,
)

WATCHDOG_USEC = 100_000  # pings every 50 ms; the bound without checks is 100 ms


class Inbox:
    """The service manager's end: reads every datagram as it comes, as systemd does."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.messages: list[str] = []
        self.read = 0  # messages already handed out by new()

    def on_readable(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                self.messages.append(self.sock.recv(4096).decode())

    def new(self) -> list[str]:
        """Return the messages that came since the last call."""
        out, self.read = self.messages[self.read :], len(self.messages)
        return out


@pytest.fixture
async def notify() -> AsyncIterator[Inbox]:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as d:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(os.path.join(d, "notify"))
        s.setblocking(False)
        inbox = Inbox(s)
        loop.add_reader(s.fileno(), inbox.on_readable)
        yield inbox
        loop.remove_reader(s.fileno())
        s.close()


def notifier(inbox: Inbox) -> Notifier:
    return Notifier(inbox.sock.getsockname(), WATCHDOG_USEC)


class CountingEngine:
    """Stands in for the Engine: its check results advance only while `working` is set."""

    def __init__(self, cfg: Config, driver: Any, listeners: Any) -> None:
        self.config = cfg
        self.listeners = listeners
        self.progress = Progress()
        self.working = True

    async def run(self) -> None:
        self.progress.probes = 1
        for listener in self.listeners:
            await listener.on_state("running")
        while True:
            if self.working:
                self.progress.results += 1
            await asyncio.sleep(0.01)

    async def reload(self, cfg: Config) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def snapshot(self) -> dict[str, object]:
        return {}


def daemon_on(notify: Inbox, factory: Any) -> Daemon:
    return Daemon(
        Config(path="/etc/ha.d/test.cf"),
        driver=FakeDriver(),
        notifier=notifier(notify),
        engine_factory=factory,
    )


async def stop(d: Daemon, task: asyncio.Task[int]) -> None:
    d.request(Request.STOP)
    assert await asyncio.wait_for(task, 2) == 0


async def test_pings_stop_when_checks_stop_and_resume_after(notify, logs_captured):
    d = daemon_on(notify, CountingEngine)
    task = asyncio.create_task(d.run())
    engine = d.engine
    assert isinstance(engine, CountingEngine)
    await until(lambda: "WATCHDOG=1\n" in notify.new())  # fed while results come in

    seen = len(logs_captured)
    engine.working = False  # the check path hangs: results stop, the loop still runs
    await until(lambda: d.watch is not None and d.watch.reason == "no_check_results")
    await until(lambda: "STATUS=stalled: no_check_results\n" in notify.messages)
    notify.new()
    await asyncio.sleep(0.2)  # four ping intervals
    assert notify.new() == []  # no WATCHDOG=1: systemd restarts the daemon
    assert d.snapshot()["daemon"]["watchdog"] == "no_check_results"  # type: ignore[index]
    stalled = [e for e in logs_captured[seen:] if e["event"] == "watchdog.stalled"]
    assert [e["reason"] for e in stalled] == ["no_check_results"]

    engine.working = True
    await until(lambda: d.watch is not None and d.watch.reason is None)
    await until(lambda: "WATCHDOG=1\n" in notify.new())
    assert "STATUS=running\n" in notify.messages
    assert any(e["event"] == "watchdog.resumed" for e in logs_captured)
    await stop(d, task)


class HangingDriver(FakeDriver):
    """Once `hanging` is set, every op waits for ever (a netlink answer that never comes)."""

    hanging = False

    async def apply(self, op: Any) -> None:
        if self.hanging:
            await asyncio.Event().wait()
        await super().apply(op)


async def test_a_hung_reconcile_in_the_real_engine_stops_the_pings(
    notify, logs_captured, monkeypatch
):
    # the scheduler's 1 s grace would make the bound 2 s; the test keeps it under 0.2 s
    monkeypatch.setattr("healthd.scheduler.GRACE", 0.0)
    script, driver = Script(), HangingDriver()
    spec = CheckSpec(checktype=CheckType.CONNECT, checktimeout=0.02)
    cfg = config(virtual(real("198.51.100.1"), check=spec, checkinterval=0.02))

    def engine(cfg: Config, _: Any, listeners: Any) -> Engine:
        factory = stub_factory(script)
        return Engine(cfg, driver, listeners=listeners, check_factory=factory)

    d = Daemon(cfg, driver, notifier=notifier(notify), engine_factory=engine)
    task = asyncio.create_task(d.run())
    try:
        await until(lambda: d.snapshot()["daemon"]["ready"])
        await until(lambda: "WATCHDOG=1\n" in notify.new())
        await until(lambda: len(driver.journal) == 2)  # the real is up: service and dest added
        driver.hanging = True
        script.set("198.51.100.1", False)  # a transition: its reconcile hangs in the driver
        await until(lambda: d.watch is not None and d.watch.reason is not None)
        assert d.watch is not None
        assert d.watch.reason == "reconcile_stuck"
        assert isinstance(d.engine, Engine)
        assert d.engine.progress.reconciling == 1
        await until(lambda: "STATUS=stalled: reconcile_stuck\n" in notify.messages)
        notify.new()
        results = d.engine.progress.results
        await asyncio.sleep(0.2)
        assert d.engine.progress.results > results  # checks go on; the kernel side is stuck
        assert "WATCHDOG=1\n" not in notify.new()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_engine_counts_results_reconciles_and_probes(harnesses):
    v = virtual(real("198.51.100.1"), real("198.51.100.2"), checkinterval=10.0)
    h = Harness(config(v))
    harnesses.append(h)
    await h.start()
    p = h.engine.progress
    assert (p.probes, p.period) == (2, 10.0 + 5.0 + 1.0)  # checkinterval + checktimeout + grace
    # jitter 0: both reals checked at once, up, and one reconcile tick after the first
    assert (p.results, p.reconciling, p.reconciles) == (2, 0, 2)
    await h.clock.advance(10)
    assert (p.results, p.reconciles) == (4, 2)  # one more round; no transition, no tick
    h.script.set("198.51.100.1", False)
    await h.clock.advance(10)
    assert (p.results, p.reconciling, p.reconciles) == (6, 0, 3)  # the down: one tick
    await h.stop()


class HangingListener(Plugin):
    """A listener whose on_result never returns: the check path is stuck behind it."""

    async def on_result(self, *args: Any) -> None:
        await asyncio.Event().wait()


async def test_a_stuck_result_path_counts_no_results(harnesses):
    v = virtual(real("198.51.100.1"), checkinterval=10.0)
    h = Harness(config(v), listeners=[HangingListener()])
    harnesses.append(h)
    await h.start()
    await h.clock.advance(30)
    assert h.engine.scheduler.runs >= 2  # the checks still run...
    assert h.engine.progress.results == 0  # ...but none reaches health
