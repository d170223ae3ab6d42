"""Supervisor benchmark: healthd's check path against a minimal asyncio loop (the floor).

For each N (default 100, 1,000 and 5,000 reals, HTTP request/receive every second) it runs
the floor and healthd alternately (A B A B), each in its own process pinned to one core,
against one nginx on the other core serving /ok.html on 127.1.X.Y. It reports CPU seconds
per 1,000 checks, achieved versus configured check rate, peak RSS and detection latency,
and checks the targets of issue #4. Not a test: run it by hand (see bench/README.md).

    .venv/bin/python bench/checks_bench.py [--sizes 100,1000,5000] [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _nginx import Backend
from _results import write_block

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- supervisor:begin (written by bench/checks_bench.py) -->"
END = "<!-- supervisor:end -->"
SECTION = "## Supervisor"

# issue #4's targets
CPU_RATIO = 1.3  # healthd CPU per 1,000 checks / the floor's
RATE_N = 5000  # N at which the achieved rate must equal the configured one
RATE_MIN = 0.99  # achieved / configured counted as equal (window edges)
DETECT_SLACK = 0.1  # seconds over checkinterval x failurecount
RSS_N, RSS_MAX = 5000, 150.0  # MB


def healthd_loop() -> str:
    """Return the loop the healthd side runs on: the daemon's (uvloop when installed)."""
    if os.environ.get("HEALTHD_BENCH_LOOP") == "asyncio":
        return "asyncio"
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def run_child(role: str, n: int, backend: Backend, args: argparse.Namespace) -> dict[str, Any]:
    """Run one contender in its own process and return its JSON report."""
    cmd = [
        sys.executable,
        str(HERE / "_checkers.py"),
        role,
        f"--n={n}",
        f"--port={backend.port}",
        f"--faildir={backend.faildir}",
        f"--workdir={backend.root}",
        f"--core={args.core}",
        f"--backend-pids={','.join(map(str, backend.worker_pids()))}",
        f"--warmup={args.warmup}",
        f"--window={args.window}",
        f"--detect-window={args.detect_window}",
        f"--fail={max(5, n // 100)}",
    ]
    if args.profile and role == "healthd":
        cmd.append(f"--profile={args.profile}/healthd-{n}-{time.time():.0f}.prof")
    if args.nice:
        cmd = ["nice", "-n", str(args.nice), *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{role} N={n} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the medians of one contender's runs at one N (latencies pooled)."""
    steady = [r["steady"] for r in runs]
    down = sorted(x for r in runs for x in r["down"])
    up = sorted(x for r in runs for x in r["up"])
    return {
        "cpu_per_1000": _median([s["cpu_per_1000"] for s in steady]),
        "cpu_per_1000_failures": _median([r["failures"]["cpu_per_1000"] for r in runs]),
        "rate": _median([s["rate"] for s in steady]),
        "configured": runs[0]["configured_rate"],
        "rss": _median([r["maxrss_mb"] for r in runs]),
        "p50": _median([r["check_ms"].get("p50", float("nan")) for r in runs]),
        "p99": _median([r["check_ms"].get("p99", float("nan")) for r in runs]),
        "down_median": _median(down),
        "down_max": max(down, default=float("nan")),
        "detected": f"{len(down)}/{sum(r['failed_reals'] for r in runs)}",
        "up_median": _median(up),
        "up_max": max(up, default=float("nan")),
        "all_passed": _median([r["all_passed"] for r in runs]),
        "backend": max(s["backend_cpu_share"] for s in steady),
        "unexpected": sum(r["unexpected"] for r in runs),
        "reconciles": sorted(x for r in runs for x in r.get("reconcile_ms", [])),
        "cpu_each": [round(s["cpu_per_1000"], 3) for s in steady],
    }


def _each(summary: dict[str, Any]) -> str:
    return ", ".join(f"{x:.3f}" for x in summary["cpu_each"])


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return f"{len(values)}, {statistics.median(values):.0f} / {max(values):.0f}"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _row(label: str, floor: str, healthd: str, note: str = "") -> str:
    return f"| {label} | {floor} | {healthd} | {note} |"


def table(n: int, f: dict[str, Any], h: dict[str, Any]) -> list[str]:
    """Return the Markdown table of one N."""
    ratio = h["cpu_per_1000"] / f["cpu_per_1000"]
    return [
        f"### N = {n:,} reals, checkinterval 1 s ({n // 10} virtuals of 10 reals)",
        "",
        "| measure | floor (asyncio, raw HTTP/1.0) "
        f"| healthd (Engine, http check, {healthd_loop()}) | note |",
        "|---|---|---|---|",
        _row(
            "CPU s per 1,000 checks (steady)",
            f"{f['cpu_per_1000']:.3f} ({_each(f)})",
            f"{h['cpu_per_1000']:.3f} ({_each(h)})",
            f"ratio **{ratio:.2f}x**",
        ),
        _row(
            "CPU s per 1,000 checks (failure phase)",
            f"{f['cpu_per_1000_failures']:.3f}",
            f"{h['cpu_per_1000_failures']:.3f}",
            "includes healthd's reconciles",
        ),
        _row(
            "achieved / configured checks per s",
            f"{f['rate']:.0f} / {f['configured']:.0f} ({f['rate'] / f['configured']:.1%})",
            f"{h['rate']:.0f} / {h['configured']:.0f} ({h['rate'] / h['configured']:.1%})",
            "",
        ),
        _row("peak RSS (MB)", f"{f['rss']:.1f}", f"{h['rss']:.1f}", ""),
        _row(
            "check duration p50 / p99 (ms)",
            f"{f['p50']:.1f} / {f['p99']:.1f}",
            f"{h['p50']:.1f} / {h['p99']:.1f}",
            "wall time of one check",
        ),
        _row(
            "detection of a failure, median / max (s)",
            f"{f['down_median']:.2f} / {f['down_max']:.2f} ({f['detected']})",
            f"{h['down_median']:.2f} / {h['down_max']:.2f} ({h['detected']})",
            "floor: first failed check; healthd: on_transition(down)",
        ),
        _row(
            "detection of the recovery, median / max (s)",
            f"{f['up_median']:.2f} / {f['up_max']:.2f}",
            f"{h['up_median']:.2f} / {h['up_max']:.2f}",
            "",
        ),
        _row(
            "start → every real passed once (s)",
            f"{f['all_passed']:.1f}",
            f"{h['all_passed']:.1f}",
            "healthd: config load + table + first checks",
        ),
        _row(
            "unexpected failed checks",
            str(f["unexpected"]),
            str(h["unexpected"]),
            "of reals never made to fail",
        ),
        _row(
            "reconciles in the failure phase: count, median / max (ms)",
            "—",
            _spread(h["reconciles"]),
            "each plans only the virtuals changed since the last",
        ),
        _row(
            "backend CPU (share of its core)",
            f"{f['backend']:.0%}",
            f"{h['backend']:.0%}",
            "nginx is not the bottleneck",
        ),
        "",
    ]


def targets(results: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """Return the Markdown table of issue #4's targets, met or not."""
    lines = ["| target | measured | met |", "|---|---|---|"]
    for n, pair in results.items():
        ratio = pair["healthd"]["cpu_per_1000"] / pair["floor"]["cpu_per_1000"]
        lines.append(
            f"| CPU per 1,000 checks ≤ {CPU_RATIO}x floor, N={n:,} | {ratio:.2f}x "
            f"| {_yes(ratio <= CPU_RATIO)} |"
        )
    if RATE_N in results:
        h = results[RATE_N]["healthd"]
        share = h["rate"] / h["configured"]
        lines.append(
            f"| achieved rate = configured, N={RATE_N:,}, 1 s, one core | {share:.1%} "
            f"(floor {results[RATE_N]['floor']['rate'] / h['configured']:.1%}) "
            f"| {_yes(share >= RATE_MIN)} |"
        )
    limit = 1.0 * 1 + DETECT_SLACK
    for n, pair in results.items():
        med = pair["healthd"]["down_median"]
        lines.append(
            f"| median detection ≤ {limit:.1f} s (1 s x failurecount 1 + 0.1 s), N={n:,} "
            f"| {med:.2f} s | {_yes(med <= limit)} |"
        )
    if RSS_N in results:
        rss = results[RSS_N]["healthd"]["rss"]
        lines.append(
            f"| peak RSS < {RSS_MAX:.0f} MB, N={RSS_N:,} | {rss:.1f} MB | {_yes(rss < RSS_MAX)} |"
        )
    return [*lines, ""]


def machine_note(args: argparse.Namespace, load: str, pressure: str) -> list[str]:
    """Return the lines that say how and where the numbers were taken."""
    commit = subprocess.run(
        ["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return [
        f"Command: `.venv/bin/python bench/checks_bench.py {' '.join(sys.argv[1:])}` "
        f"at commit {commit or '?'}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python "
        f"{platform.python_version()}, nginx on core {args.backend_core}, each checker alone "
        f"in its own process on core {args.core}"
        + (f" at nice {args.nice}" if args.nice else "")
        + f". Shared and noisy: load average {load} and CPU pressure `{pressure}` at the start."
        " Compare ratios and medians taken in this one run, not absolute figures. The floor"
        f" runs on the stdlib asyncio loop, healthd on the daemon's loop ({healthd_loop()}).",
        "",
        f"Each run: start, wait until every real passed once, {args.warmup:g} s warm-up, "
        f"{args.window:g} s steady window (CPU via getrusage deltas, checks counted by an "
        f"engine Listener / the loop itself), then a {args.detect_window:g} s failure phase in "
        "which max(5, N/100) reals answer 500 from 0.5 s to 3 s (a file nginx tests per "
        f"request). {args.rounds} rounds per N, floor and healthd alternating; medians shown.",
        "",
    ]


def _proc(path: str) -> str:
    try:
        return Path(path).read_text().split("\n")[0].strip()
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--detect-window", type=float, default=6.0)
    parser.add_argument("--core", type=int, default=0, help="core of the checkers")
    parser.add_argument("--backend-core", type=int, default=1, help="core of nginx")
    parser.add_argument("--nice", type=int, default=0, help="run both sides at this nice value")
    parser.add_argument("--write", type=Path, help="update this RESULTS.md's Supervisor section")
    parser.add_argument("--json", type=Path, help="also dump every run's raw report here")
    parser.add_argument("--profile", type=Path, help="cProfile healthd's steady windows into DIR")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    load = " ".join(_proc("/proc/loadavg").split()[:3])
    pressure = _proc("/proc/pressure/cpu")
    raw: dict[int, dict[str, list[dict[str, Any]]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="healthd-bench-") as tmp,
        Backend(max(sizes), core=args.backend_core, root=Path(tmp), nice=args.nice) as be,
    ):
        for n in sizes:
            raw[n] = {"floor": [], "healthd": []}
            for rnd in range(args.rounds):
                for role in ("floor", "healthd"):
                    report = run_child(role, n, be, args)
                    raw[n][role].append(report)
                    s = report["steady"]
                    print(
                        f"N={n} round={rnd + 1} {role}: {s['cpu_per_1000']:.3f} CPU s/1000, "
                        f"{s['rate']:.0f}/{n} checks/s, RSS {report['maxrss_mb']:.0f} MB",
                        flush=True,
                    )
    results = {n: {r: summarize(runs) for r, runs in pair.items()} for n, pair in raw.items()}
    body = machine_note(args, load, pressure)
    for n, pair in results.items():
        body += table(n, pair["floor"], pair["healthd"])
    body += ["### Targets (issue #4)", "", *targets(results)]
    print("\n".join(body))
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    if args.write:
        write_block(args.write, SECTION, BEGIN, END, body)


if __name__ == "__main__":
    main()
