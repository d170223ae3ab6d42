"""Benchmark: healthd against keepalived from a cold start in the test VM (not a test).

One command, from the checkout on the host (it boots the VM itself):

    .venv/bin/python bench/vm_startup.py --write bench/RESULTS.md

In one boot of the VM (tests/kernel/vm.py: Debian's kernel under qemu TCG), for each N (500
and 2,000 by default) it serves N reals 127.1.X.Y:80 from one nginx worker on vCPU 1, then
runs keepalived and healthd in turn on vCPU 0, each on an empty IPVS table and on the same
topology (bench/_daemons.py). For each it measures: exec → every real in the kernel table
(/proc/net/ip_vs polled every 0.2 s), then after a warm-up a steady window with the CPU of the
daemon's process tree per 1,000 checks, the achieved check rate against the configured one
(requests counted in nginx's access log), RSS, and the fewest reals seen in the table during
the window (a healthy real timed out and removed shows there). The VM emulates its CPU, so
absolute figures are slow and noisy; compare the two daemons within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _daemons import INTERVAL, command, stop, usage
from _nginx import Backend
from _results import write_block

DAEMONS = ("keepalived", "healthd")
BEGIN, END = "<!-- vm-startup:begin -->", "<!-- vm-startup:end -->"
SECTION = "## Cold start in the VM"
POLL = 0.2


def table_reals() -> int:
    """Return how many destinations the kernel's IPVS table holds now."""
    text = Path("/proc/net/ip_vs").read_text()
    return sum(1 for line in text.splitlines()[3:] if line.startswith("  -> "))


class Requests:
    """Counts the lines nginx appends to its access log (one per check answered)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0
        self.count = 0

    def read(self) -> int:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        self.count += data.count(b"\n")
        return self.count


def _wait_full(proc: subprocess.Popen[bytes], n: int, limit: float) -> dict[str, Any]:
    """Poll the table until it holds n reals or `limit` passes; return when and the timeline."""
    start = time.monotonic()
    timeline: list[tuple[float, int]] = []
    full = None
    while (elapsed := time.monotonic() - start) < limit:
        count = table_reals()
        if not timeline or elapsed - timeline[-1][0] >= 1.0 or count >= n:
            timeline.append((round(elapsed, 1), count))
        if count >= n:
            full = elapsed
            break
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode} during start-up")
        time.sleep(POLL)
    return {"full_s": full, "timeline": timeline, "start_cpu": usage(proc.pid).cpu}


def _steady(proc: subprocess.Popen[bytes], log: Requests, args: argparse.Namespace) -> dict:
    time.sleep(args.warmup)
    spy = _sampler(proc.pid, args) if "healthd" in str(proc.args) else None
    fewest = table_reals()
    u0, c0, t0 = usage(proc.pid), log.read(), time.monotonic()
    while time.monotonic() - t0 < args.window:
        time.sleep(POLL * 5)
        fewest = min(fewest, table_reals())
    u1, c1, t1 = usage(proc.pid), log.read(), time.monotonic()
    if spy is not None:
        spy.wait()
    checks = c1 - c0
    return {
        "checks": checks,
        "rate": checks / (t1 - t0),
        "cpu_per_1000": (u1.cpu - u0.cpu) / checks * 1000 if checks else None,
        "rss_mb": u1.rss_mb,
        "fewest": fewest,
    }


def run_one(daemon: str, n: int, backend: Backend, args: argparse.Namespace) -> dict[str, Any]:
    """Start one daemon cold on an empty table, measure it, stop it."""
    subprocess.run(["ipvsadm", "-C"], check=True)
    workdir = Path(args.workdir)
    argv = command(daemon, n, backend.port, workdir.resolve(), args.core)
    if (args.profile or args.pyspy) and daemon == "healthd":
        # the marker option up front spares the re-exec, so cProfile sees the daemon itself
        prof = [
            "-X",
            "ldirectord-compatible",
            "-m",
            "cProfile",
            "-o",
            f"{workdir}/{daemon}-{n}.prof",
        ]
        argv = [*argv[:3], sys.executable, *prof[: None if args.profile else 2], *argv[3:]]
    assert backend.access_log is not None
    log = Requests(backend.access_log)
    with (workdir / f"{daemon}-{n}.out").open("wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        try:
            report = _wait_full(proc, n, args.limit)
            report |= _steady(proc, log, args)
        finally:
            stop(proc)
    report |= {"daemon": daemon, "n": n, "configured": n / INTERVAL}
    print(f"N={n} {daemon}: {_line(report)}", flush=True)
    return report


def _sampler(pid: int, args: argparse.Namespace) -> subprocess.Popen[bytes] | None:
    """Sample the steady window with py-spy on the nginx vCPU (--pyspy; pip install py-spy)."""
    if not args.pyspy:
        return None
    out = Path(args.workdir) / f"healthd-{pid}.stacks"
    spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", "-r", "20"]
    spy += ["-d", str(int(args.window)), "-f", "raw", "-o", str(out), "-p", str(pid)]
    cmd = ["taskset", "-c", str(args.backend_core), *spy]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def _line(r: dict[str, Any]) -> str:
    full = f"{r['full_s']:.1f} s" if r["full_s"] is not None else f"not full ({_at(r, 1e9)})"
    cpu = f"{r['cpu_per_1000']:.2f}" if r["cpu_per_1000"] is not None else "-"
    return (
        f"full table {full}, {cpu} CPU s/1000 checks, {r['rate']:.0f}/{r['configured']:.0f}"
        f" checks/s, RSS {r['rss_mb']:.0f} MB, fewest {r['fewest']}"
    )


def _at(r: dict[str, Any], t: float) -> int:
    """Return how many reals the table held at t seconds after exec."""
    seen = [c for s, c in r["timeline"] if s <= t]
    return seen[-1] if seen else 0


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _num(v: float | None, fmt: str = ".2f") -> str:
    return format(v, fmt) if v is not None else "never"


def _full(r: dict[str, Any], limit: float) -> str:
    if r["full_s"] is not None:
        return f"{r['full_s']:.1f}"
    return f"never ({_at(r, limit)} after {limit:g} s)"


def table(n: int, k: dict[str, Any], h: dict[str, Any], limit: float) -> list[str]:
    """Return the markdown rows comparing keepalived (k) and healthd (h) at one N."""
    marks = [t for t in (5, 10, 30, 60, 120, 300) if t < limit]

    def row(label: str, kv: str, hv: str, note: str = "") -> str:
        return f"| {label} | {kv} | {hv} | {note} |"

    rows = [
        f"### N = {n:,} reals ({n // 10} virtuals of 10)",
        "",
        "| measure | keepalived | healthd | healthd / keepalived |",
        "|---|---|---|---|",
        row(
            "exec → full table (s)",
            _full(k, limit),
            _full(h, limit),
            _ratio(h["full_s"], k["full_s"]),
        ),
        row(
            "reals in the table at " + " / ".join(f"{t} s" for t in marks),
            " / ".join(str(_at(k, t)) for t in marks),
            " / ".join(str(_at(h, t)) for t in marks),
        ),
        row(
            "CPU s until the full table (or given up)",
            f"{k['start_cpu']:.1f}",
            f"{h['start_cpu']:.1f}",
            _ratio(h["start_cpu"], k["start_cpu"]),
        ),
        row(
            "CPU s per 1,000 checks (steady)",
            _num(k["cpu_per_1000"]),
            _num(h["cpu_per_1000"]),
            _ratio(h["cpu_per_1000"], k["cpu_per_1000"]),
        ),
        row(
            "achieved / configured checks per s",
            f"{k['rate']:.0f} / {k['configured']:.0f} ({k['rate'] / k['configured']:.0%})",
            f"{h['rate']:.0f} / {h['configured']:.0f} ({h['rate'] / h['configured']:.0%})",
            _ratio(h["rate"], k["rate"]),
        ),
        row("RSS (MB, whole process tree)", f"{k['rss_mb']:.0f}", f"{h['rss_mb']:.0f}"),
        row("fewest reals in the table in the window", str(k["fewest"]), str(h["fewest"])),
        "",
    ]
    return rows


def machine_note(args: argparse.Namespace) -> list[str]:
    load = Path("/proc/loadavg").read_text().split()[:3]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return [
        f"Command: `.venv/bin/python bench/vm_startup.py {' '.join(args.argv)}` at commit"
        f" {commit or '?'}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Guest: kernel {platform.release()}, {os.cpu_count()} vCPUs (qemu TCG), Python"
        f" {platform.python_version()}, load average {' '.join(load)} at the start. One boot;"
        f" nginx on vCPU 1, each daemon alone on vCPU 0; warm-up {args.warmup:g} s, steady"
        f" window {args.window:g} s, start-up given up after {args.limit:g} s."
        " keepalived (`--check`, no `alpha`) puts its reals in the table before checking them;"
        " healthd starts them down and adds each after its first passing check.",
        "",
    ]


def in_vm(argv: list[str]) -> int:
    """Re-run this script inside the test VM (one boot for the whole run)."""
    checkout = Path(__file__).resolve().parents[1]
    python = checkout / ".venv" / "bin" / "python"
    script = Path(__file__).resolve().relative_to(checkout)
    cmd = [sys.executable, "-m", "tests.kernel.vm", "run", "--", str(python), str(script), *argv]
    return subprocess.run(cmd, cwd=checkout).returncode


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500,2000")
    parser.add_argument("--daemons", default=",".join(DAEMONS))
    parser.add_argument("--limit", type=float, default=150.0, help="give up start-up after")
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--core", type=int, default=0, help="vCPU of the daemons")
    parser.add_argument("--backend-core", type=int, default=1, help="vCPU of nginx")
    parser.add_argument("--write", type=Path, help="update this RESULTS.md's section")
    parser.add_argument("--json", type=Path, help="also dump the raw reports here")
    parser.add_argument("--profile", action="store_true", help="cProfile healthd into --keep")
    parser.add_argument("--pyspy", action="store_true", help="py-spy healthd's window")
    parser.add_argument("--keep", type=Path, help="keep configs and daemon logs in this DIR")
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def outside_checkout(args: argparse.Namespace) -> list[str]:
    """Return the output paths the guest could not write: only the checkout is writable there."""
    checkout = Path(__file__).resolve().parents[1]
    paths = [p for p in (args.write, args.json, args.keep) if p is not None]
    return [str(p) for p in paths if not p.resolve().is_relative_to(checkout)]


def main() -> int:
    argv = sys.argv[1:]
    args = parse(argv)
    if bad := outside_checkout(args):
        # the guest sees the host's / read-only: say so now, not after minutes of measuring
        print(f"vm_startup: outside the checkout, read-only in the VM: {', '.join(bad)}")
        return 2
    if os.environ.get("HEALTHD_VM") != "1":
        return in_vm(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    daemons = args.daemons.split(",")
    note = machine_note(args)
    runs: dict[int, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="healthd-vmbench-") as tmp:
        args.workdir = tmp  # tmpfs: the checkout's 9p share is far too slow for logs
        root = Path(tmp) / "nginx"
        root.mkdir()
        with Backend(
            max(sizes), core=args.backend_core, root=root, port=80, access_log=True
        ) as backend:
            for n in sizes:
                runs[n] = {d: run_one(d, n, backend, args) for d in daemons}
        if args.keep:
            shutil.copytree(
                tmp, args.keep, ignore=shutil.ignore_patterns("nginx"), dirs_exist_ok=True
            )
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    body = list(note)
    for n, pair in runs.items():
        if set(pair) >= set(DAEMONS):
            body += table(n, pair["keepalived"], pair["healthd"], args.limit)
    print("\n".join(body))
    if args.write:
        write_block(args.write, SECTION, BEGIN, END, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
