"""The two contenders of the supervisor benchmark, each run alone in a child process.

`healthd`: the real Engine with a FakeDriver on a generated ldirectord.cf (HTTP negotiate,
checkinterval=1). `floor`: a minimal stdlib asyncio loop sending a raw HTTP/1.0 GET to each
real once per second. `check-loop` (by hand only, not in checks_bench.py): the floor's loop
calling healthd's HTTPCheck directly, which separates the check's own cost from the scheduler's
and the engine's. Each pins itself to one core, warms up, then measures one window: CPU
(getrusage deltas), checks counted, peak RSS, and the detection of reals made to fail at known
instants. Prints one JSON line on stdout. Usage: see bench/checks_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from _nginx import address, cpu_ticks

INTERVAL = 1.0
TIMEOUT = 3.0
MAX_IN_FLIGHT = 256  # the same cap as healthd's default max_in_flight
PER_VIRTUAL = 10  # reals per virtual service, as in the performance anchors


@dataclass
class Tally:
    """What a contender saw: checks in the window and when failing reals were noticed."""

    size: int = 0  # reals in the run
    failing: set[str] = field(default_factory=set)  # reals made to fail (ever, this run)
    counting: bool = False
    checks: int = 0
    unexpected: int = 0  # failed checks of reals that were never made to fail
    changed_at: dict[str, float] = field(default_factory=dict)  # real -> instant of its change
    down: dict[str, float] = field(default_factory=dict)  # real -> latency of down detection
    up: dict[str, float] = field(default_factory=dict)  # real -> latency of up detection
    reasons: dict[str, int] = field(default_factory=dict)
    passed: set[str] = field(default_factory=set)  # reals that passed a check at least once
    all_passed: asyncio.Event = field(default_factory=asyncio.Event)
    elapsed: list[float] = field(default_factory=list)  # seconds each check took

    def result(self, real: str, ok: bool, reason: str = "", elapsed: float = 0.0) -> None:
        if ok and len(self.passed) < self.size:
            self.passed.add(real)
            if len(self.passed) == self.size:
                self.all_passed.set()
        if self.counting:
            self.checks += 1
            self.elapsed.append(elapsed)
            if not ok and real not in self.failing:
                self.unexpected += 1
                self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def transition(self, real: str, up: bool) -> None:
        changed = self.changed_at.get(real)
        if changed is None:
            return
        latency = time.monotonic() - changed
        if up and real in self.down and real not in self.up:
            self.up[real] = latency
        elif not up and real not in self.down:
            self.down[real] = latency


# --- the floor: a minimal asyncio loop ---------------------------------------------------


async def _raw_get(host: str, port: int) -> bool:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET /ok.html HTTP/1.0\r\n\r\n")
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b" ", 2)[1:2] == [b"200"] and b"ok" in body


Getter = Callable[[str, int], Awaitable[bool]]


async def _floor_real(
    host: str, port: int, tally: Tally, sem: asyncio.Semaphore, get: Getter
) -> None:
    await asyncio.sleep(random.random() * INTERVAL)
    was_up = True
    while True:
        started = time.monotonic()
        async with sem:
            begun = time.monotonic()  # as healthd's Result.elapsed: the wait for a slot is not in
            try:
                async with asyncio.timeout(TIMEOUT):
                    ok = await get(host, port)
            except (OSError, TimeoutError, IndexError) as exc:
                ok, reason = False, type(exc).__name__
            else:
                reason = "" if ok else "status"
        tally.result(host, ok, reason, time.monotonic() - begun)
        if ok != was_up:
            tally.transition(host, ok)
            was_up = ok
        await asyncio.sleep(max(INTERVAL - (time.monotonic() - started), 0.0))


def _check_getter() -> Getter:
    """Return a getter that runs healthd's HTTP check itself, without scheduler or engine."""
    from ipaddress import ip_address

    from checks.base import CheckContext, Target
    from checks.http import HTTPCheck

    options = {"request": "/ok.html", "receive": "ok"}
    check = HTTPCheck.from_options(options, CheckContext(timeout=TIMEOUT))

    targets: dict[str, Target] = {}

    async def get(host: str, port: int) -> bool:
        target = targets.get(host) or targets.setdefault(host, Target(ip_address(host), port))
        return (await check.check(target)).up

    return get


async def run_floor(args: argparse.Namespace, tally: Tally) -> Callable[[], Awaitable[None]]:
    """Start the floor's probers; return how to stop them."""
    sem = asyncio.Semaphore(MAX_IN_FLIGHT)
    get = _raw_get if args.role == "floor" else _check_getter()
    tasks = [
        asyncio.create_task(_floor_real(address(i), args.port, tally, sem, get))
        for i in range(args.n)
    ]

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return stop


# --- healthd: the real Engine on FakeDriver ----------------------------------------------


def write_config(path: Path, n: int, port: int) -> None:
    """Write an ldirectord.cf with n reals, PER_VIRTUAL per virtual, checked by HTTP each second."""
    lines = [
        f"checkinterval={INTERVAL:g}",
        f"negotiatetimeout={TIMEOUT:g}",
        "failurecount=1",
        "quiescent=yes",
        "",
    ]
    for v in range((n + PER_VIRTUAL - 1) // PER_VIRTUAL):
        # documentation addresses: the FakeDriver holds them, no packet ever goes there
        lines.append(f"virtual=192.0.2.{v % 250 + 1}:{10000 + v // 250}")
        for i in range(v * PER_VIRTUAL, min(n, (v + 1) * PER_VIRTUAL)):
            lines.append(f"    real={address(i)}:{port} masq 1")
        lines += ["    service=http", '    request="/ok.html"', '    receive="ok"', ""]
    path.write_text("\n".join(lines))


def _listener(tally: Tally) -> Any:
    """Return an engine plugin that feeds the tally (healthd is imported here, not above)."""
    from healthd.plugins import Plugin

    class Feed(Plugin):
        def __init__(self) -> None:
            self.running = asyncio.Event()

        async def on_result(self, virtual: Any, real: Any, result: Any) -> None:
            tally.result(str(real.address), result.up, result.reason, result.elapsed)

        async def on_transition(
            self, virtual: Any, real: Any, up: bool, result: Any, reason: str
        ) -> None:
            tally.transition(str(real.address), up)

        async def on_state(self, state: str) -> None:
            if state == "running":
                self.running.set()

    return Feed()


async def run_healthd(args: argparse.Namespace, tally: Tally) -> Callable[[], Awaitable[None]]:
    """Load the generated config, start the Engine; return how to stop it."""
    from healthd import heap, logs, plugins
    from healthd.config import load
    from healthd.engine import Engine
    from healthd.ipvs.fake import FakeDriver

    cf = Path(args.workdir) / f"bench-{args.n}.cf"
    write_config(cf, args.n, args.port)
    # as the daemon runs it: info level, JSON lines to a logfile= path
    logs.configure(False, str(Path(args.workdir) / f"healthd-{args.n}.log"), cache=True)
    config = await asyncio.to_thread(load, str(cf))
    listener = _listener(tally)
    heap.tune()  # the daemon's collector settings (healthd.app.serve)
    engine = Engine(config, FakeDriver(), listeners=[listener, plugins.Settle()])
    task = asyncio.create_task(engine.run())
    waiter = asyncio.create_task(listener.running.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # the engine died at start: show why
        raise SystemExit("engine ended before running")

    async def stop() -> None:
        async with asyncio.timeout(30):
            await engine.shutdown()
            await task

    return stop


# --- the measurement ---------------------------------------------------------------------


def _failing(n: int, count: int) -> list[str]:
    step = max(n // count, 1)
    return [address(i) for i in range(step // 2, n, step)][:count]


def _flip(faildir: Path, reals: list[str], tally: Tally, *, fail: bool) -> None:
    for real in reals:
        path = faildir / real
        if fail:
            path.touch()
            tally.failing.add(real)
        else:
            path.unlink(missing_ok=True)
        tally.changed_at[real] = time.monotonic()


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    last = len(ordered) - 1
    picks = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
    return {k: round(ordered[min(int(q * len(ordered)), last)] * 1000, 2) for k, q in picks.items()}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Phase:
    """CPU, checks and backend CPU between two instants."""

    cpu: float = 0.0
    checks: int = 0
    elapsed: float = 0.0
    backend: float = 0.0

    def view(self) -> dict[str, float | None]:
        per = self.cpu / self.checks * 1000 if self.checks else None
        return {
            "seconds": self.elapsed,
            "checks": self.checks,
            "cpu": self.cpu,
            "cpu_per_1000": per,
            "rate": self.checks / self.elapsed if self.elapsed else 0.0,
            "backend_cpu_share": self.backend / self.elapsed if self.elapsed else 0.0,
        }


async def _phase(tally: Tally, backend: list[int], body: Awaitable[None]) -> Phase:
    ticks0, cpu0, checks0, t0 = cpu_ticks(backend), _cpu(), tally.checks, time.monotonic()
    tally.counting = True
    await body
    tally.counting = False
    return Phase(
        cpu=_cpu() - cpu0,
        checks=tally.checks - checks0,
        elapsed=time.monotonic() - t0,
        backend=(cpu_ticks(backend) - ticks0) / os.sysconf("SC_CLK_TCK"),
    )


async def _inject(args: argparse.Namespace, tally: Tally, reals: list[str]) -> None:
    faildir = Path(args.faildir)
    await asyncio.sleep(0.5)
    _flip(faildir, reals, tally, fail=True)
    await asyncio.sleep(args.restore_at - 0.5)
    _flip(faildir, reals, tally, fail=False)
    await asyncio.sleep(args.detect_window - args.restore_at)


async def _ready(tally: Tally, n: int, limit: float) -> float:
    """Wait until every real has passed a check once; return how long that took."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            await tally.all_passed.wait()
    except TimeoutError:
        print(f"warning: only {len(tally.passed)}/{n} reals passed", file=sys.stderr)
    return time.monotonic() - started


def _reconciles(log: Path, since: float) -> list[float]:
    """Return the durations (ms) of the reconciles healthd logged since `since` (epoch s)."""
    if not log.exists():
        return []
    found = []
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") != "ipvs.resynced" or event.get("periodic"):
            continue
        stamp = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
        if stamp >= since:
            found.append(float(event["duration_ms"]))
    return found


def _profiler() -> Any:
    import cProfile

    prof = cProfile.Profile(time.process_time)  # CPU time: other processes do not count
    prof.enable()
    return prof


async def measure(args: argparse.Namespace) -> dict[str, object]:
    """Start the contender, wait for every real, warm up, measure steady state then failures."""
    tally = Tally(size=args.n)
    begin = run_healthd if args.role == "healthd" else run_floor
    started = time.monotonic()
    stop = await begin(args, tally)
    startup = time.monotonic() - started
    all_passed = startup + await _ready(tally, args.n, 120.0)
    await asyncio.sleep(args.warmup)
    backend = [int(p) for p in args.backend_pids.split(",") if p]
    prof = _profiler() if args.profile else None
    steady = await _phase(tally, backend, asyncio.sleep(args.window))
    if prof is not None:
        prof.disable()
        prof.dump_stats(args.profile)
    check_ms = _quantiles(tally.elapsed)
    reals = _failing(args.n, args.fail)
    since = time.time()
    failures = await _phase(tally, backend, _inject(args, tally, reals))
    await stop()
    reconciles = _reconciles(Path(args.workdir) / f"healthd-{args.n}.log", since)
    return {
        "role": args.role,
        "n": args.n,
        "startup": startup,
        "all_passed": all_passed,
        "steady": steady.view(),
        "failures": failures.view(),
        "configured_rate": args.n / INTERVAL,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "unexpected": tally.unexpected,
        "unexpected_reasons": tally.reasons,
        "failed_reals": len(reals),
        "down": sorted(tally.down.values()),
        "up": sorted(tally.up.values()),
        "check_ms": check_ms,
        "reconcile_ms": reconciles,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=("healthd", "floor", "check-loop"))
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--faildir", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--backend-pids", default="")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=8.0, help="steady-state seconds")
    parser.add_argument("--fail", type=int, default=5, help="reals made to fail")
    parser.add_argument("--detect-window", type=float, default=6.0, help="failure phase seconds")
    parser.add_argument("--restore-at", type=float, default=3.0, help="within the failure phase")
    parser.add_argument("--profile", help="write a cProfile of the steady phase to this file")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.role == "healthd" and os.environ.get("HEALTHD_BENCH_LOOP") != "asyncio":
        from healthd import loop

        out = loop.run(measure(args))  # the daemon's loop (uvloop when installed)
    else:
        out = asyncio.run(measure(args))  # the floor stays a minimal stdlib asyncio loop
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
