"""The demo's story: three local reals, one fails and recovers, the table printed as it changes.

Runs the ordinary Daemon on the kernel's IPVS when root and ip_vs allow it (touching only the
demo's own service, removed at the end), otherwise on the in-memory FakeDriver, and says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, TextIO

from healthd.daemon import Daemon, Request
from healthd.demo.backends import Backend, start_backends
from healthd.demo.table import render
from healthd.errors import HealthdError
from healthd.ipvs.driver import IPVSDriver
from healthd.ipvs.types import DelService, Protocol, ServiceKey, Table
from healthd.plugins import Plugin

if TYPE_CHECKING:
    from healthd.web.operator import Operator

ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
VIP, VPORT = "127.0.0.100", 8080
DEMO_SERVICE = ServiceKey(Protocol.TCP, ip_address(VIP), VPORT)
STEP_WAIT = 8.0  # seconds each step of the story may take (checkinterval is 1 s)
POLL = 0.1
PAUSE = 1.5  # seconds between the story's steps, time to read the table
HTTP_PORT = 9188  # the status page and metrics, on 127.0.0.1


def config_text(backends: list[Backend], logfile: str) -> str:
    """Return the demo's ldirectord.cf: one virtual, the backends as masq reals."""
    reals = "".join(f"\treal={b.endpoint} masq\n" for b in backends)
    return (
        "# healthd demo: written by `healthd demo`, removed when it ends\n"
        f'checkinterval=1\nlogfile="{logfile}"\n\n'
        f"virtual={VIP}:{VPORT}\n{reals}"
        '\tservice=http\n\trequest="ok.html"\n\treceive="ok"\n'
        "\tchecktimeout=1\n\tscheduler=wrr\n\tquiescent=no\n"
    )


async def choose_driver(fake: bool, say: Callable[[str], None]) -> IPVSDriver:
    """Return the kernel driver when usable and the demo service is free, else the fake."""
    from healthd.ipvs.fake import FakeDriver

    if fake:
        say("using the in-memory IPVS table (--fake)")
        return FakeDriver()
    if os.geteuid() != 0:
        say("using the in-memory IPVS table (not root: the kernel's IPVS needs CAP_NET_ADMIN)")
        return FakeDriver()
    from healthd.ipvs.netlink import NetlinkDriver

    driver = NetlinkDriver()
    try:
        table = await driver.dump()
    except HealthdError as exc:
        await driver.aclose()
        say(f"using the in-memory IPVS table (kernel IPVS unavailable: {exc})")
        return FakeDriver()
    if DEMO_SERVICE in table.services:
        await driver.aclose()
        say(f"using the in-memory IPVS table ({DEMO_SERVICE} already exists; not touching it)")
        return FakeDriver()
    say("using the kernel's IPVS table (root, ip_vs loaded)")
    return driver


@dataclass
class Story:
    """Prints the table whenever it changes and walks the failure/recovery steps."""

    driver: IPVSDriver
    backends: list[Backend]
    out: TextIO
    started: float
    last: Table | None = None

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f}s] {text}", file=self.out, flush=True)

    async def watch(self) -> None:
        """Print the demo service whenever it changes."""
        while True:
            table = await self.driver.dump()
            mine = Table({k: e for k, e in table.services.items() if k == DEMO_SERVICE})
            if mine != self.last:
                self.last = mine
                self.say(f"IPVS table changed:\n{render(mine)}\n")
            await asyncio.sleep(POLL)

    def weights(self) -> dict[str, int]:
        entry = self.last.services.get(DEMO_SERVICE) if self.last is not None else None
        return {str(k): d.weight for k, d in entry.dests.items()} if entry is not None else {}

    async def until(self, what: str, predicate: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + STEP_WAIT
        while not predicate():
            if time.monotonic() > deadline:
                self.say(f"gave up waiting: {what}")
                return False
            await asyncio.sleep(POLL)
        return True

    async def play(self) -> bool:
        """Walk the story; return whether every step happened."""
        everyone = {b.endpoint for b in self.backends}
        if not await self.until("all reals up", lambda: set(self.weights()) == everyone):
            return False
        self.say("all three reals are up and in the table")
        await asyncio.sleep(PAUSE)
        victim = self.backends[1]
        victim.failing = True
        self.say(f"making {victim.endpoint} fail: its ok.html now answers 500")
        if not await self.until(
            "the failed real leaves", lambda: victim.endpoint not in self.weights()
        ):
            return False
        self.say(f"{victim.endpoint} was taken out of the table")
        await asyncio.sleep(PAUSE)
        victim.failing = False
        self.say(f"{victim.endpoint} recovers: ok.html answers 200 again")
        if not await self.until("the real returns", lambda: victim.endpoint in self.weights()):
            return False
        self.say(f"{victim.endpoint} is back in the table: failure and recovery shown")
        return True


async def run(
    duration: float, fake: bool, out: TextIO = sys.stdout, http_port: int | None = HTTP_PORT
) -> int:
    """Run the demo for at most `duration` seconds (0: the story, then until interrupted).

    With `http_port`, the status page, metrics and API are served on 127.0.0.1 (0: any
    free port); a port that cannot be had only turns them off.
    """
    started = time.monotonic()
    say = lambda text: print(f"[{time.monotonic() - started:5.1f}s] {text}", file=out, flush=True)  # noqa: E731
    backends = await start_backends(ADDRESSES)
    try:
        with tempfile.TemporaryDirectory(prefix="healthd-demo-") as tmp:
            return await _run_in(tmp, backends, (duration, fake, http_port), out, started, say)
    finally:
        for backend in backends:
            await backend.stop()


async def _run_in(
    tmp: str,
    backends: list[Backend],
    options: tuple[float, bool, int | None],
    out: TextIO,
    started: float,
    say: Callable[[str], None],
) -> int:
    from healthd.config import load
    from healthd.web.operator import Operator

    duration, fake, http_port = options
    say("real servers: " + ", ".join(f"http://{b.endpoint}/ok.html" for b in backends))
    path = os.path.join(tmp, "ldirectord.cf")
    text = config_text(backends, os.path.join(tmp, "healthd.log"))
    await asyncio.to_thread(_write, path, text)
    say(f"configuration {path}:\n{text}")
    driver = await choose_driver(fake, say)
    story = Story(driver, backends, out, started)
    operator = Operator(driver, (ip_address("127.0.0.1"), http_port or 0))
    plugins: list[Plugin] = [operator.stats, operator] if http_port is not None else []
    daemon = Daemon(await asyncio.to_thread(load, path), operator.driver, listeners=plugins)
    if http_port is not None:
        await _serve_page(operator, daemon, say)
    try:
        return await _drive(daemon, story, duration)
    finally:
        with contextlib.suppress(HealthdError):
            await driver.apply(DelService(DEMO_SERVICE))  # only ever the demo's own service
        await driver.aclose()


async def _serve_page(operator: Operator, daemon: Daemon, say: Callable[[str], None]) -> None:
    """Start the page before the daemon runs; a port in use turns it off, not the demo."""
    operator.attach(daemon)
    try:
        await operator.start()
    except HealthdError as exc:
        operator.attach(None)  # the daemon's own start of its plugins then serves nothing
        say(f"status page off: {exc}")
        return
    url = operator.url
    say(f"status page: {url} (metrics: {url}metrics, JSON: {url}api/v1/status)")


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


async def _drive(daemon: Daemon, story: Story, duration: float) -> int:
    ok = False

    async def script() -> None:
        nonlocal ok
        try:
            async with asyncio.timeout(duration or None):
                ok = await story.play()
                if duration == 0:
                    story.say("running until interrupted (Ctrl-C)")
                    await asyncio.Event().wait()
        except TimeoutError:
            story.say(f"--duration {duration:g}s reached")
        daemon.request(Request.STOP)

    async with asyncio.TaskGroup() as tg:
        watcher = tg.create_task(story.watch())
        story_task = tg.create_task(script())
        await daemon.run()  # until the story ends, or Ctrl-C (SIGINT stops the daemon)
        story_task.cancel()
        await asyncio.sleep(2 * POLL)  # let the watcher show the final table
        watcher.cancel()
    story.say("demo finished" if ok else "demo finished early")
    return 0 if ok else 1
