"""The configuration model is frozen all the way down: what load() returns cannot change."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthd.config import StaticResolver, load
from healthd.model import Config

DATA = Path(__file__).resolve().parent.parent / "data" / "configs"
CONFIGS = sorted(DATA.glob("*.cf"))
RESOLVER = StaticResolver(
    hosts={"db01": ["198.51.100.91"], "db03": ["198.51.100.93"]},
    services={"domain": 53},
)


def instances(value: object) -> Iterator[object]:
    """Yield every dataclass instance reachable from `value` (itself included)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield value
        for f in dataclasses.fields(value):
            yield from instances(getattr(value, f.name))
    elif isinstance(value, tuple | frozenset):
        for item in value:
            yield from instances(item)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_loaded_model_is_frozen_and_hashable(path: Path):
    config = load(str(path), resolver=RESOLVER, hostname="lb1.example")
    assert isinstance(config, Config)
    kinds = set()
    for obj in instances(config):
        kinds.add(type(obj).__name__)
        name = dataclasses.fields(obj)[0].name  # every model class has fields
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, name, getattr(obj, name))
        for f in dataclasses.fields(obj):
            assert not isinstance(getattr(obj, f.name), list | dict | set | bytearray), f.name
    assert {"Config", "Virtual", "Real", "CheckSpec", "Alerts"} <= kinds
    assert hash(config) == hash(load(str(path), resolver=RESOLVER, hostname="lb1.example"))
