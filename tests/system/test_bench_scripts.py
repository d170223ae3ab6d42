"""The benchmarks still run: each bench/ script that can run outside the VM, at a toy size.

They are not tests of speed (their figures go to bench/RESULTS.md by hand, on a quiet
machine); this only keeps them working as the engine they drive changes under them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_scrape_benchmark_runs_and_reports_each_figure() -> None:
    out = _bench("scrape_bench.py", "--n", "20", "--rounds", "1", "--window", "1", "--warmup", "0")
    for figure in ("CPU per scrape (render)", "exposition size", "achieved check rate"):
        assert figure in out
    assert "20 /s" in out  # the configured rate of 20 reals checked each second
