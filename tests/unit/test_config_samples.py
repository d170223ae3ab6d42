"""The shipped samples (etc/ldirectord.cf, etc/examples/*.cf) parse cleanly, without DNS."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthd.config import StaticResolver, load_with_warnings

ETC = Path(__file__).resolve().parents[2] / "etc"
SAMPLES = [ETC / "ldirectord.cf", *sorted((ETC / "examples").glob("*.cf"))]


def test_there_are_samples():
    assert len(SAMPLES) >= 8


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_parses_without_warnings(path: Path):
    # an empty StaticResolver: samples use literal addresses and numeric ports only
    config, warnings = load_with_warnings(str(path), resolver=StaticResolver(), hostname="lb1")
    # the only warnings: lines that show healthd's own directives, which ldirectord rejects
    assert [w for w in warnings if "is healthd's own directive" not in w.message] == []
    assert all(w.ldirectord for w in warnings)
    assert config.virtuals
    assert all(v.reals for v in config.virtuals)
