"""Golden files: each tests/data/configs/*.cf → its normalised model and warnings (YAML).

Regenerate after a deliberate change with HEALTHD_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from healthd.config import StaticResolver, dump_model, load_with_warnings, parse_text, render_config

DATA = Path(__file__).resolve().parent.parent / "data"
CONFIGS = sorted((DATA / "configs").glob("*.cf"))
RESOLVER = StaticResolver(
    hosts={"db01": ["198.51.100.91"], "db03": ["198.51.100.93"]},
    services={"domain": 53},
)


def golden_of(path: Path) -> dict[str, object]:
    config, warnings = load_with_warnings(str(path), resolver=RESOLVER, hostname="lb1.example")
    rel = path.relative_to(DATA).as_posix()
    return {
        "warnings": [str(w).replace(str(path), rel) for w in warnings],
        "config": {**dump_model(config), "path": rel},
    }


def test_corpus_is_not_empty():
    assert len(CONFIGS) >= 7


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_golden(path: Path):
    golden = DATA / "golden" / f"{path.stem}.yaml"
    actual = golden_of(path)
    if os.environ.get("HEALTHD_UPDATE_GOLDEN"):
        golden.write_text(yaml.safe_dump(actual, sort_keys=False))
    assert actual == yaml.safe_load(golden.read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_render_round_trip(path: Path):
    config, _ = load_with_warnings(str(path), resolver=RESOLVER, hostname="lb1.example")
    again = parse_text(
        render_config(config), config.path, resolver=RESOLVER, hostname="lb1.example"
    )
    assert again == config
