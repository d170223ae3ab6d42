"""healthd.heap: the collector's young threshold, and the freeze after each config load."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from healthd import heap


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_tune_raises_only_the_young_threshold() -> None:
    gc.set_threshold(700, 10, 10)
    heap.tune()
    assert gc.get_threshold() == (heap.YOUNG, 10, 10)


def test_settle_freezes_the_survivors_and_collects_cycles_first() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    gc.unfreeze()
    gc.collect()
    cycle = Node()
    frozen = heap.settle()
    assert frozen == gc.get_freeze_count() > 0
    assert any(obj is cycle for obj in gc.get_objects()) is False  # frozen: out of the scans
    del cycle
    # the next settle unfreezes first: a cycle that an old config left behind is collected
    collected: list[int] = []
    gc.callbacks.append(lambda phase, info: collected.append(info["collected"]))
    try:
        heap.settle()
    finally:
        gc.callbacks.pop()
    assert sum(collected) >= 1


async def test_the_listener_settles_on_running_only() -> None:
    gc.unfreeze()
    listener = heap.Settle()
    for state in ("starting", "reloading", "stopping"):
        await listener.on_state(state)
        assert gc.get_freeze_count() == 0
    await listener.on_state("running")
    assert gc.get_freeze_count() > 0
