"""Measure an active/active cluster in the test VM: convergence and failed requests.

Runs tests/kernel/test_cluster.py in the throwaway VM (a router with BIRD and ECMP, two
directors each running healthd and BIRD, two reals, a client sending one request per new
connection without pause) and prints what it measured: each director's share of the
connections, and for a director whose view of the reals fails, a director whose healthd
stops and a director that is lost, how long until the router's route changed and how many
requests failed meanwhile. With --write it replaces the "Cluster" section of RESULTS.md.

    .venv/bin/python bench/cluster.py [--write bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.kernel import vm  # noqa: E402

HEADING = "## Cluster"


def run() -> dict[str, dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="healthd-cluster-") as tmp:
        argv = [vm.guest_python(), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "tests/kernel/test_cluster.py"]  # fmt: skip
        done = vm.run(argv, stream=sys.stdout, results=Path(tmp))
        if done.returncode != 0:
            raise SystemExit(f"the cluster test failed (exit status {done.returncode})")
        measured: dict[str, dict[str, object]] = json.loads(
            (Path(tmp) / "cluster.json").read_text()
        )
        measured["vm"] = {
            "boot_s": round(done.boot_seconds, 1),
            "total_s": round(done.total_seconds, 1),
        }
        return measured


def render(m: dict[str, dict[str, object]]) -> str:
    steady, view, stop, lost = m["steady"], m["view_fails"], m["healthd_stops"], m["director_lost"]
    return f"""{HEADING}

`bench/cluster.py` (tests/kernel/test_cluster.py in the VM, qemu TCG; the numbers of the
last run). The client opens one connection per request, one after the other; a request
fails when it gets no answer within 2 s.

| what | route changed at the router after | requests | failed |
| --- | --- | --- | --- |
| steady, both directors (share of connections d1 / d2: {steady["share"]}) | — | {steady["requests"]} | {steady["failed"]} |
| every real fails in d1's view (detection {view["detection_s"]} s, then withdrawal {view["withdraw_after_down_s"]} s, then router {view["router_after_withdraw_s"]} s) | {view["converged_s"]} s | {view["requests"]} | {view["failed"]} |
| d2's healthd stops (SIGTERM; route withdrawn {stop["withdraw_after_term_s"]} s after it) | {stop["converged_s"]} s (after its exit) | {stop["requests"]} | {stop["failed"]} |
| d1 lost (link down, healthd killed): BGP hold time 3 s | {lost["converged_s"]} s | {lost["connections"]} established connections, {lost["carried_by_lost_director"]} on d1 | {int(str(lost["connections"])) - int(str(lost["survived"]))} lost |

VM: booted in {m["vm"]["boot_s"]} s, {m["vm"]["total_s"]} s in all.
"""


def write(path: Path, section: str) -> None:
    text = path.read_text()
    start = text.find(f"\n{HEADING}\n")
    if start < 0:
        path.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    end = text.find("\n## ", start + 1)
    tail = "" if end < 0 else "\n" + text[end + 1 :]
    path.write_text(text[: start + 1] + section + tail)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="replace the Cluster section of this file")
    args = parser.parse_args()
    measured = run()
    section = render(measured)
    print(section)
    if args.write:
        write(args.write, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
