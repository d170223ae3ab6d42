"""A short run of bench/soak.py: its invariants hold under churn, reloads and drift.

No timing is judged: every flip of a real shows as exactly its transition, in order, the
table equals the expected one at every settle, every hand-made drift is repaired, and the
descriptors do not grow. The full run (5,000 reals, 10 minutes) is the benchmark's.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def _soak():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


async def test_a_short_soak_keeps_every_invariant():
    soak = _soak()
    record = await soak.soak(300, 20.0, quiet=False)
    v = soak.verdict(record)
    assert v["errors"] == []
    assert v["flips"] > 300  # the 300 first ups and the churn
    assert v["missed"] == {}
    assert v["extra"] == []
    assert v["transitions"] == v["flips"]
    assert len(v["settles"]) >= 2
    assert v["all_equal"], v["settles"]
    assert v["reloads"] >= 2
    assert v["drifts"] >= 3
    assert len(v["fds"]) == 1, v["fds"]
