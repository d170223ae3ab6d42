"""Scrape benchmark: the CPU of one /metrics scrape at N reals, and whether scraping lowers
the achieved check rate.

One process pinned to one core runs the real Engine on a generated ldirectord.cf (HTTP
request/receive every second, 10 reals per virtual, the FakeDriver) with the operator's
plugins as the daemon wires them (CountingDriver, the Stats listener and sampler, the
aiohttp server on loopback), against one nginx on the other core (bench/_nginx.py). After
every real has passed once and a warm-up, it alternates windows without and with scraping
(A B A B): in B, another process fetches /metrics once a second. It reports
the CPU (thread time) of each scrape's rendering, the bytes and samples per scrape, the
achieved check rate of each window against the configured one, and for reference the
CPU prometheus_client's own renderer takes for the same per-real families. Not a test:

    .venv/bin/python bench/scrape_bench.py [--n 5000] [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _checkers import INTERVAL, write_config
from _nginx import Backend
from _results import write_block

BEGIN = "<!-- scrape:begin (written by bench/scrape_bench.py) -->"
END = "<!-- scrape:end -->"
SECTION = "## Scrape"
CPU_MAX_MS = 50.0  # issue #10: one scrape at 5,000 reals under 50 ms of CPU
RATE_MIN = 0.99  # achieved / configured counted as equal (window edges)


async def start(n: int, port: int, workdir: Path) -> tuple[Any, Any, Any, Any]:
    """Start the Engine with the operator's plugins; return engine, metrics, server, task."""
    from healthd import heap, logs, plugins
    from healthd.config import load
    from healthd.engine import Engine
    from healthd.ipvs.fake import FakeDriver
    from healthd.web.operator import Operator

    cf = workdir / f"scrape-{n}.cf"
    write_config(cf, n, port)
    logs.configure(False, str(workdir / f"scrape-{n}.log"), cache=True)
    config = await asyncio.to_thread(load, str(cf))
    heap.tune()
    from ipaddress import ip_address

    operator = Operator(FakeDriver(), (ip_address("127.0.0.1"), 0))
    engine = Engine(config, operator.driver, listeners=[operator.stats, plugins.Settle()])
    task = asyncio.create_task(engine.run())
    sampler = asyncio.create_task(operator.stats.run())

    class Facts:  # the daemon as the operator's server reads it
        reloads, reload_failures, loaded_at = 0, 0, time.time()

    facts = Facts()
    facts.engine = engine  # type: ignore[attr-defined]
    facts.snapshot = engine.snapshot  # type: ignore[attr-defined]
    operator.attach(facts)  # type: ignore[arg-type]
    await operator.start()
    url = operator.url
    assert operator.server is not None
    return engine, operator.server._metrics, url, (task, sampler, operator)


async def settle(engine: Any, n: int, limit: float = 180.0) -> None:
    """Wait until every real is up (each has passed a check)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        up = sum(1 for s in engine.slots.values() if s.health.is_up)
        if up == n:
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"only {up}/{n} reals came up")


def _timed_render(metrics: Any, times: list[float], sizes: list[int]) -> None:
    original = metrics.render

    def render() -> bytes:
        t0 = time.thread_time()
        body: bytes = original()
        times.append((time.thread_time() - t0) * 1000)
        sizes.append(len(body))
        return body

    metrics.render = render


# The scraper: another process, started once per window, fetching /metrics once a second
# as Prometheus would. (Spawning curl from healthd's own process each second made every
# scrape pay for the fork's copy-on-write page faults, which no real scrape does.)
SCRAPER = """
import sys, time, urllib.request
url, end = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    t0 = time.monotonic()
    with urllib.request.urlopen(url) as reply:
        reply.read()
    time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
"""


async def window(engine: Any, seconds: float, scrape_url: str | None) -> float:
    """Return the checks per second achieved over a window (scraped once a second if asked)."""
    r0, t0 = engine.progress.results, time.monotonic()
    scraper = None
    if scrape_url is not None:
        scraper = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SCRAPER, scrape_url, str(seconds)
        )
    await asyncio.sleep(seconds)
    rate: float = (engine.progress.results - r0) / (time.monotonic() - t0)
    if scraper is not None and await scraper.wait() != 0:
        raise SystemExit("the scraper failed")
    return rate


def reference(metrics: Any) -> float:
    """Return the CPU ms prometheus_client's generate_latest takes for the per-real families."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    text = b"".join(metrics.families()).decode()
    families = list(text_string_to_metric_families(text))

    class Again:
        def collect(self) -> Any:
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Again())
    t0 = time.thread_time()
    generate_latest(registry)
    return (time.thread_time() - t0) * 1000


async def measure(args: argparse.Namespace, port: int, workdir: Path) -> dict[str, Any]:
    engine, metrics, url, (task, sampler, operator) = await start(args.n, port, workdir)
    await settle(engine, args.n)
    await asyncio.sleep(args.warmup)
    for _ in range(3):  # the first builds the per-config line templates; the next ones grow
        metrics.render()  # the heap to its high-water mark once: not a scrape's cost
    times: list[float] = []
    sizes: list[int] = []
    _timed_render(metrics, times, sizes)
    rates: dict[str, list[float]] = {"plain": [], "scraped": []}
    for _ in range(args.rounds):
        rates["plain"].append(await window(engine, args.window, None))
        rates["scraped"].append(await window(engine, args.window, url + "metrics"))
    lines = metrics.render().count(b"\n")
    ref = reference(metrics)
    await operator.aclose()
    sampler.cancel()
    await engine.shutdown()
    await task
    return {"n": args.n, "configured": args.n / INTERVAL, "rates": rates, "scrape_ms": times,
            "bytes": sizes[-1] if sizes else 0, "lines": lines, "reference_ms": ref,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def report(r: dict[str, Any], load: str, nice: int = 0) -> list[str]:
    ms = sorted(r["scrape_ms"])
    plain, scraped = r["rates"]["plain"], r["rates"]["scraped"]
    med = statistics.median(ms) if ms else float("nan")
    ratio = statistics.median(scraped) / statistics.median(plain)
    ok_cpu = med < CPU_MAX_MS  # the typical scrape; the max is shown beside it
    ok_rate = ratio >= RATE_MIN  # what scraping costs the checks; the rates are shown above
    each = ", ".join(f"{x:.0f}" for x in plain)
    each_scraped = ", ".join(f"{x:.0f}" for x in scraped)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return [
        f"Command: `.venv/bin/python bench/scrape_bench.py {' '.join(sys.argv[1:])}` "
        f"at commit {commit or '?'}, {when}.",
        "",
        f"N = {r['n']:,} reals (HTTP check every {INTERVAL:g} s, 10 per virtual), one core; "
        f"load before the run: {load}; {len(ms)} scrapes, one a second, from another process"
        f"{f'; nice {nice}' if nice else ''}.",
        "",
        "| | value |",
        "| --- | ---: |",
        f"| CPU per scrape (render), min / median / max | {min(ms):.1f} / {med:.1f} / "
        f"{max(ms):.1f} ms |",
        f"| exposition size | {r['bytes'] / 1e6:.1f} MB, {r['lines']:,} lines |",
        f"| prometheus_client's renderer for the same families | {r['reference_ms']:.0f} ms |",
        f"| achieved check rate, no scraping (each window) | {each} /s |",
        f"| achieved check rate, scraped each second | {each_scraped} /s |",
        f"| configured check rate | {r['configured']:.0f} /s |",
        f"| peak RSS | {r['maxrss_mb']:.0f} MB |",
        "",
        f"- a scrape (median) under {CPU_MAX_MS:g} ms of CPU: {'yes' if ok_cpu else 'no'}",
        f"- scraping keeps the achieved rate (scraped / plain {ratio:.3f}, "
        f"needs ≥ {RATE_MIN}): {'yes' if ok_rate else 'no'}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--backend-core", type=int, default=1)
    parser.add_argument("--nice", type=int, default=0, help="run healthd and nginx at this nice")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    with (
        tempfile.TemporaryDirectory(prefix="healthd-scrape-") as tmp,
        Backend(args.n, core=args.backend_core, root=Path(tmp), nice=args.nice) as be,
    ):
        os.sched_setaffinity(0, {args.core})
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        from healthd import loop

        result = loop.run(measure(args, be.port, Path(tmp)))
    body = report(result, load, args.nice)
    print("\n".join(body))
    if args.write:
        write_block(args.write, SECTION, BEGIN, END, body)


if __name__ == "__main__":
    main()
