"""Benchmark: programming an IPVS table with NetlinkDriver versus `ipvsadm -R` (not a test).

Runs inside the test VM (root, ip_vs loaded), in a throwaway network namespace:

    .venv/bin/python -m tests.kernel.vm run -- .venv/bin/python bench/ipvs_program.py \\
        --write bench/RESULTS.md

For each size (services x 10 destinations) it programs an empty table op by op through
NetlinkDriver.apply (what the daemon does) and dumps it back, then flushes and restores the
same table with `ipvsadm -R` from the equivalent `ipvsadm -Sn` text and lists it with
`ipvsadm -Sn`. Both results are checked against the intended table. The VM emulates its CPU
(TCG), so absolute times are slow; the ratio and the growth are what this measures.
`--profile SERVICES` instead programs and dumps one size under cProfile and prints where the
time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import platform
import pstats
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from healthd.ipvs.format import to_ipvsadm
from healthd.ipvs.netlink import NetlinkDriver
from healthd.ipvs.types import (
    AddDest,
    AddService,
    Dest,
    DestKey,
    Method,
    Op,
    Protocol,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)

NETNS = f"healthd-bench-{os.getpid()}"
SECTION = "## IPVS programming"


def build(services: int, per: int = 10) -> Table:
    """Return a table of `services` tcp services on 192.0.2.0/24 with `per` reals each."""
    entries = {}
    for i in range(services):
        key = ServiceKey(Protocol.TCP, IPv4Address("192.0.2.1") + i % 250, 1000 + i // 250)
        dests = {}
        for j in range(per):
            d = Dest(DestKey(IPv4Address("203.0.113.1") + j, 8080), 1 + j, Method.MASQ)
            dests[d.key] = d
        entries[key] = ServiceEntry(Service(key, "wrr"), dests)
    return Table(entries)


def ops_for(table: Table) -> list[Op]:
    ops: list[Op] = []
    for e in table.services.values():
        ops.append(AddService(e.service))
        ops.extend(AddDest(e.service.key, d) for d in e.dests.values())
    return ops


def ns(*argv: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["ip", "netns", "exec", NETNS, *argv], input=stdin, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Row:
    dests: int
    services: int
    netlink_program: float
    netlink_dump: float
    ipvsadm_restore: float
    ipvsadm_save: float


async def measure(services: int) -> Row:
    table = build(services)
    text = to_ipvsadm(table)
    driver = NetlinkDriver(netns=NETNS)
    ns("ipvsadm", "-C")
    assert (await driver.dump()).services == {}
    t0 = time.perf_counter()
    for op in ops_for(table):
        await driver.apply(op)
    t1 = time.perf_counter()
    dumped = await driver.dump()
    t2 = time.perf_counter()
    assert dumped == table, "netlink dump differs from the programmed table"
    ns("ipvsadm", "-C")
    assert (await driver.dump()).services == {}
    t3 = time.perf_counter()
    ns("ipvsadm", "-R", stdin=text)
    t4 = time.perf_counter()
    saved = ns("ipvsadm", "-Sn")
    t5 = time.perf_counter()
    assert saved == text, "ipvsadm -R restored a different table"
    ns("ipvsadm", "-C")
    await driver.aclose()
    return Row(services * 10, services, t1 - t0, t2 - t1, t4 - t3, t5 - t4)


def report(rows: list[Row]) -> str:
    lines = [
        SECTION,
        "",
        "`bench/ipvs_program.py`, in the test VM (qemu TCG, Debian kernel "
        f"{platform.release()}): an empty table programmed op by op with NetlinkDriver.apply "
        "(what the daemon does) and dumped back, against `ipvsadm -R` restoring the same table "
        "(from `ipvsadm -Sn` text) and `ipvsadm -Sn` listing it; flushed between. Services "
        "are tcp, 10 masq reals each. Seconds, one run each.",
        "",
        "| destinations | services | healthd apply | healthd dump "
        "| ipvsadm -R | ipvsadm -Sn | apply / ipvsadm -R | dump / ipvsadm -Sn "
        "| healthd µs per op |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ops = r.dests + r.services
        lines.append(
            f"| {r.dests:,} | {r.services:,} | {r.netlink_program:.2f} "
            f"| {r.netlink_dump:.2f} | {r.ipvsadm_restore:.2f} | {r.ipvsadm_save:.2f} "
            f"| {r.netlink_program / r.ipvsadm_restore:.2f} "
            f"| {r.netlink_dump / r.ipvsadm_save:.2f} | {r.netlink_program / ops * 1e6:.0f} |"
        )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        growth = (last.netlink_program / last.dests) / (first.netlink_program / first.dests)
        base = (last.ipvsadm_restore / last.dests) / (first.ipvsadm_restore / first.dests)
        lines += [
            "",
            f"Per-destination cost from {first.dests:,} to {last.dests:,} destinations: "
            f"healthd x{growth:.2f}, ipvsadm -R x{base:.2f} (1.0 = linear).",
        ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    """Replace (or append) this benchmark's section of RESULTS.md."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(SECTION))
        tail = old[end + 1 :] if end >= 0 else ""
        new = old[:start] + text + ("\n" + tail if tail else "")
    path.write_text(new)


async def measure_all(sizes: list[int]) -> list[Row]:
    rows = []
    for n in sizes:
        rows.append(await measure(n))
        print(rows[-1], flush=True)
    return rows


async def profile(services: int) -> str:
    """Return cProfile's top functions for programming and dumping `services` x 10."""
    table = build(services)
    driver = NetlinkDriver(netns=NETNS)
    ns("ipvsadm", "-C")
    await driver.dump()  # opens the socket outside the profile
    prof = cProfile.Profile()
    prof.enable()
    for op in ops_for(table):
        await driver.apply(op)
    dumped = await driver.dump()
    prof.disable()
    assert dumped == table, "netlink dump differs from the programmed table"
    ns("ipvsadm", "-C")
    await driver.aclose()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="100,1000,5000", help="comma-separated counts")
    parser.add_argument("--write", type=Path, help="update this RESULTS.md section")
    parser.add_argument("--profile", type=int, metavar="SERVICES", help="profile one size only")
    args = parser.parse_args()
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    subprocess.run(["ip", "-n", NETNS, "link", "set", "lo", "up"], check=True)
    try:
        if args.profile:
            print(asyncio.run(profile(args.profile)))
            return
        rows = asyncio.run(measure_all([int(x) for x in args.services.split(",")]))
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], check=False)
    text = report(rows)
    print(text)
    if args.write:
        write_section(args.write, text)


if __name__ == "__main__":
    main()
