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


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def render(m: dict[str, dict[str, object]]) -> str:
    steady, view, stop, lost = m["steady"], m["view_fails"], m["healthd_stops"], m["director_lost"]
    vrrp = m["vrrp_takeover"]
    lost_count = int(str(lost["connections"])) - int(str(lost["survived"]))
    rows = [
        _row("what", "route changed at the router after", "requests", "failed"),
        _row("---", "---", "---", "---"),
        _row(f"steady, both directors (connections d1 / d2: {steady['share']})", "—",
             steady["requests"], steady["failed"]),
        _row(f"every real fails in d1's view (detected after {view['detection_s']} s, route "
             f"withdrawn {view['withdraw_after_down_s']} s later, router "
             f"{view['router_after_withdraw_s']} s later)", f"{view['converged_s']} s",
             view["requests"], view["failed"]),
        _row(f"d2's healthd stops (SIGTERM; route withdrawn {stop['withdraw_after_term_s']} s "
             "after it)", f"{stop['converged_s']} s (after its exit)", stop["requests"],
             stop["failed"]),
        _row(f"active/backup: keepalived's VRRP master stops, d2 takes the VIP "
             f"(connections d1 / d2: {vrrp['share']})", f"{vrrp['converged_s']} s (VIP moved)",
             vrrp["requests"], vrrp["failed"]),
        _row("d1 lost (link down, healthd killed; BGP hold time 3 s)",
             f"{lost['converged_s']} s", f"{lost['connections']} established connections, "
             f"{lost['carried_by_lost_director']} on d1", f"{lost_count} lost"),
    ]  # fmt: skip
    vm_run = m["vm"]
    return (
        f"{HEADING}\n\n"
        "`bench/cluster.py` (tests/kernel/test_cluster.py in the VM, qemu TCG; the numbers of\n"
        "the last run). The client opens one connection per request, one after the other; a\n"
        "request fails when it gets no answer within 2 s.\n\n"
        + "\n".join(rows)
        + f"\n\nVM: booted in {vm_run['boot_s']} s, {vm_run['total_s']} s in all.\n"
    )


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
