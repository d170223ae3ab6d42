"""Soak: the real Engine supervising N reals for a long time under churn, reloads and drift.

One process runs healthd's Engine on the in-memory IPVS table (FakeDriver, with the
kernel's rules) and a stub check kind whose answer the soak decides: every second a few
reals start failing or recover (none flipped again before it has been checked twice),
every RELOAD seconds the configuration switches between two variants (some
reals' weights differ), and every DRIFT seconds a hand-made change lands in the table
(a real deleted, a weight edited, a foreign real added to an owned service). Every
SETTLE seconds the churn pauses until a periodic resync has run and every real has been
checked since its last flip; the table must then equal the one the soak expects from its
own record (weights from the variant in force, 0 for failing reals: quiescent=yes, no
foreign real). At the end every real must have seen exactly the transitions its flips
asked for, in order. RSS and open descriptors are sampled all along. Not a test:

    nice -n 10 .venv/bin/python bench/soak.py [--n 5000] [--duration 600] [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any, ClassVar, Self

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path (tests)

from _results import write_block

from checks.base import CheckContext, Result, Target

BEGIN = "<!-- soak:begin (written by bench/soak.py) -->"
END = "<!-- soak:end -->"
SECTION = "## Soak"
PER_VIRTUAL = 10
INTERVAL = 2.0  # checkinterval of every real
RESYNC = 5.0  # resync_interval
FLIPS = 10  # reals flipped per second
RELOAD = 5.0
DRIFT = 3.0
SETTLE = 60.0
WARMUP = 60.0  # seconds before the RSS baseline (the heap settles, the first churn)


def address(i: int) -> str:
    return f"10.{i // 62500 % 250}.{i // 250 % 250}.{i % 250 + 1}"


def config_text(n: int, variant: int) -> str:
    """Return the ldirectord.cf of n reals; variant 1 doubles every third real's weight."""
    lines = [
        f"checkinterval={INTERVAL:g}",
        "checktimeout=1",
        "failurecount=1",
        f"resync_interval={RESYNC:g}",
        "quiescent=yes",
        "readdquiescent=yes",  # a failing real deleted by hand comes back at weight 0
        "",
    ]
    for v in range((n + PER_VIRTUAL - 1) // PER_VIRTUAL):
        lines.append(f"virtual=192.0.2.{v % 250 + 1}:{10000 + v // 250}")
        for i in range(v * PER_VIRTUAL, min(n, (v + 1) * PER_VIRTUAL)):
            lines.append(f"    real={address(i)}:80 masq {weight(i, variant)}")
        lines += ["    checktype=negotiate", "    service=simpletcp", "    request=x", ""]
    return "\n".join(lines)


def weight(i: int, variant: int) -> int:
    return 2 if variant == 1 and i % 3 == 0 else 1


FAILING: set[str] = set()  # the reals the stub check reports down ("10.0.0.1:80")


@dataclass(frozen=True, slots=True)
class SoakCheck:
    """A check whose answer is the soak's: down while the real is in FAILING."""

    kind: ClassVar[str] = "simpletcp"

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        return cls()

    async def check(self, target: Target) -> Result:
        await asyncio.sleep(0)  # one trip through the loop, as a socket would take
        if str(target) in FAILING:
            return Result.down("refused", "soak: failing")
        return Result.ok("soak: ok")


def _factory(kind: str) -> type[SoakCheck]:
    return SoakCheck


@dataclass
class Record:
    """What the soak did and saw."""

    flips: dict[str, list[bool]] = field(default_factory=dict)  # real -> up after each flip
    seen: dict[str, list[bool]] = field(default_factory=dict)  # real -> each transition
    flipped_at: dict[str, float] = field(default_factory=dict)
    checked: dict[str, float] = field(default_factory=dict)  # real -> last result's time
    since: dict[str, int] = field(default_factory=dict)  # real -> results since its flip
    resyncs: int = 0
    reloads: int = 0
    drifts: int = 0
    settles: list[tuple[float, bool, int]] = field(default_factory=list)  # t, equal, diffs
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # t, rss, fds
    errors: list[str] = field(default_factory=list)


def _listener(record: Record) -> Any:
    from healthd.plugins import Plugin

    class Listen(Plugin):
        async def on_result(self, virtual: Any, real: Any, result: Result) -> None:
            record.checked[real.endpoint] = time.monotonic()
            record.since[real.endpoint] = record.since.get(real.endpoint, 0) + 1

        async def on_transition(
            self, virtual: Any, real: Any, up: bool, result: Any, reason: str
        ) -> None:
            record.seen.setdefault(real.endpoint, []).append(up)

        async def on_reconcile(self, report: Any) -> None:
            record.resyncs += report.periodic

    return Listen()


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def expected(n: int, variant: int) -> dict[str, int]:
    return {f"{address(i)}:80": 0 if f"{address(i)}:80" in FAILING else weight(i, variant)
            for i in range(n)}  # fmt: skip


async def actual(driver: Any) -> dict[str, int]:
    table = await driver.dump()
    out: dict[str, int] = {}
    for entry in table.services.values():
        for dest in entry.dests.values():
            out[f"{dest.key.address}:{dest.key.port}"] = dest.weight
    return out


def flip(record: Record, reals: list[str], rng: random.Random, now: float) -> None:
    """Flip FLIPS reals that have been checked twice since their last flip (or the start).

    Counted in results, not seconds, so a loaded machine that checks late flips less
    rather than flipping a real back before healthd could see it change.
    """
    chosen = 0
    for real in rng.sample(reals, min(len(reals), FLIPS * 20)):
        if record.since.get(real, 0) < 2 or chosen == FLIPS:
            continue
        chosen += 1
        record.since[real] = 0
        up = real in FAILING  # failing now: it recovers
        FAILING.symmetric_difference_update({real})
        record.flips.setdefault(real, []).append(up)
        record.flipped_at[real] = now


async def drift(driver: Any, rng: random.Random, record: Record) -> None:
    """Make one hand-made change in the table, as an operator with ipvsadm would."""
    from healthd.ipvs.types import AddDest, DelDest, Dest, DestKey, EditDest, Method

    table = await driver.dump()
    key = rng.choice(list(table.services))
    dests = list(table.services[key].dests.values())
    what = record.drifts % 3
    if what == 0 and dests:
        op: Any = DelDest(key, rng.choice(dests).key)
    elif what == 1 and dests:
        d = rng.choice(dests)
        op = EditDest(key, dataclasses.replace(d, weight=d.weight + 7))
    else:
        foreign = DestKey(ip_address("198.51.100.250"), 80)
        op = AddDest(key, Dest(foreign, 5, Method.MASQ))
        if foreign in table.services[key].dests:
            op = DelDest(key, foreign)
    try:
        await driver.apply_raw(op)
        record.drifts += 1
    except Exception as exc:
        record.errors.append(f"drift {op}: {exc}")


async def settle(engine: Any, driver: Any, record: Record, n: int, variant: int) -> None:
    """Pause the churn until every real was checked since its flip, then a resync ran."""
    began = time.monotonic()
    while pending := [r for r, t in record.flipped_at.items() if record.checked.get(r, 0) <= t]:
        await asyncio.sleep(0.5)
        if time.monotonic() - began > 120:
            record.errors.append(f"settle: {len(pending)} reals not checked after 120 s")
            break
    resyncs = record.resyncs
    while record.resyncs < resyncs + 2:  # noqa: ASYNC110 - polls the listener's count
        await asyncio.sleep(0.2)  # (two: the next may have begun before the last result)
    want, got = expected(n, variant), await actual(driver)
    wrong = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
    diffs = len(wrong)
    if wrong:
        shown = [(k, want.get(k), got.get(k)) for k in wrong[:3]]
        record.errors.append(f"settle: {diffs} reals differ (real, want, got): {shown}")
    record.settles.append((time.monotonic(), diffs == 0, diffs))


async def soak(n: int, duration: float, seed: int = 13, *, quiet: bool = True) -> Record:
    """Run the soak for `duration` seconds on n reals; return what it did and saw.

    `quiet` sets the process up as the daemon is (logs cached, sent nowhere here; the
    collector tuned); a test passes False to leave the process as it found it.
    """
    from healthd import heap, logs
    from healthd.config import parse_text
    from healthd.engine import Engine
    from healthd.ipvs.fake import FakeDriver

    FAILING.clear()
    if quiet:
        logs.configure(False, os.devnull, cache=True)
    variants = [parse_text(config_text(n, v), f"soak-{v}.cf") for v in (0, 1)]
    record, rng, driver = Record(), random.Random(seed), FakeDriver()
    if quiet:
        heap.tune()
    engine = Engine(variants[0], driver, listeners=[_listener(record)], check_factory=_factory)
    task = asyncio.create_task(engine.run())
    reals = [f"{address(i)}:80" for i in range(n)]
    record.flips = {real: [True] for real in reals}  # each comes up at its first check
    start = time.monotonic()
    every = min(SETTLE, duration / 3)  # a short run settles three times
    variant, next_reload, next_drift, next_settle, next_sample = 0, RELOAD, DRIFT, every, 0.0
    while (t := time.monotonic() - start) < duration:
        if t >= next_sample:
            record.samples.append((t, rss(), fds()))
            next_sample += 10.0
        if t >= next_settle:
            await settle(engine, driver, record, n, variant)
            next_settle = time.monotonic() - start + every
            continue
        flip(record, reals, rng, time.monotonic())
        # the in-memory driver keeps every op for tests to read; a kernel keeps none
        driver.journal.clear()
        if t >= next_reload:
            variant = 1 - variant
            await engine.reload(variants[variant])
            record.reloads += 1
            next_reload += RELOAD
        if t >= next_drift:
            await drift(driver, rng, record)
            next_drift += DRIFT
        await asyncio.sleep(1.0)
    await settle(engine, driver, record, n, variant)
    record.samples.append((time.monotonic() - start, rss(), fds()))
    await engine.shutdown()
    await task
    return record


def verdict(record: Record) -> dict[str, Any]:
    """Return the soak's findings: transitions, settles, RSS and descriptors."""
    missed = {r: (f, record.seen.get(r, [])) for r, f in record.flips.items()
              if record.seen.get(r, []) != f}  # fmt: skip
    extra = [r for r in record.seen if r not in record.flips]
    base = [s for s in record.samples if s[0] >= min(WARMUP, record.samples[-1][0] / 3)]
    rss0, rss1 = base[0][1], max(s[1] for s in base)
    return {
        "flips": sum(len(f) for f in record.flips.values()),
        "transitions": sum(len(s) for s in record.seen.values()),
        "missed": missed,
        "extra": extra,
        "settles": record.settles,
        "all_equal": all(ok for _, ok, _ in record.settles),
        "rss_start": rss0,
        "rss_max": rss1,
        "rss_growth": (rss1 - rss0) / rss0,
        "fds": sorted({s[2] for s in base}),
        "rss_minutes": " ".join(f"{s[1] / (1 << 20):.0f}" for s in record.samples[::6]),
        "resyncs": record.resyncs,
        "reloads": record.reloads,
        "drifts": record.drifts,
        "errors": record.errors,
    }


def report(v: dict[str, Any], n: int, duration: float, load: str) -> list[str]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    mb = 1 / (1 << 20)
    ok_rss = v["rss_growth"] <= 0.05
    return [
        f"`nice -n 10 .venv/bin/python bench/soak.py --n {n} --duration {duration:g}` at "
        f"{commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {load} "
        f"(a shared 2-core machine); checkinterval {INTERVAL:g} s, resync {RESYNC:g} s, "
        f"{FLIPS} reals flipped a second, a reload every {RELOAD:g} s, drift every {DRIFT:g} s.",
        "",
        "| what | value |",
        "| --- | --- |",
        f"| reals | {n:,} |",
        f"| flips (a real failing or recovering) | {v['flips']:,} |",
        f"| transitions seen | {v['transitions']:,} |",
        f"| reals whose transitions differ from their flips | {len(v['missed'])} |",
        f"| transitions of reals never flipped | {len(v['extra'])} |",
        f"| reloads / hand-made drifts / periodic resyncs | "
        f"{v['reloads']} / {v['drifts']} / {v['resyncs']} |",
        f"| settles with the table equal to the expected one | "
        f"{sum(ok for _, ok, _ in v['settles'])} of {len(v['settles'])} |",
        f"| RSS after warm-up → highest | {v['rss_start'] * mb:.1f} MiB → "
        f"{v['rss_max'] * mb:.1f} MiB ({v['rss_growth']:+.1%}) |",
        f"| open descriptors after warm-up (every sample) | {v['fds']} |",
        f"| RSS every minute (MiB) | {v['rss_minutes']} |",
        f"| soak errors | {len(v['errors'])} {v['errors'][:3] if v['errors'] else ''} |",
        "",
        f"- no missed transition: {'yes' if not v['missed'] and not v['extra'] else 'no'}",
        f"- table equal to the expected one at every settle: {'yes' if v['all_equal'] else 'no'}",
        f"- RSS flat (≤ 5 % growth after warm-up): {'yes' if ok_rss else 'no'}",
        f"- descriptors flat: {'yes' if len(v['fds']) == 1 else 'no'}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    from healthd import loop

    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    record = loop.run(soak(args.n, args.duration, args.seed))
    body = report(verdict(record), args.n, args.duration, load)
    print("\n".join(body))
    if args.write:
        write_block(args.write, SECTION, BEGIN, END, body)


if __name__ == "__main__":
    main()
