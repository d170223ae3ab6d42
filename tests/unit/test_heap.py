"""healthd.heap: the collector's young threshold, and the freeze after each config load."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from healthd import heap, plugins


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
    listener = plugins.Settle()
    for state in ("starting", "reloading", "stopping"):
        await listener.on_state(state)
        assert gc.get_freeze_count() == 0
    await listener.on_state("running")
    assert gc.get_freeze_count() > 0


KEEP_PROBE = """
import resource, sys
from healthd import heap
if sys.argv[1] == "keep":
    assert heap.keep_large_blocks()
def faults_of_a_scrape() -> int:  # as healthd.web.families builds one: 8 MB in all
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    parts = [bytearray() for _ in range(8)]
    line = b"x" * 100
    for part in parts:
        for _ in range(10_000):
            part += line
    body = b"".join(parts)
    del parts, body
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_a_scrape()
print(min(faults_of_a_scrape() for _ in range(3)))
"""


def _faults(mode: str) -> int:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", KEEP_PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def test_keep_large_blocks_reuses_a_freed_block_instead_of_faulting_it_in_again() -> None:
    # 16 MB is 4,096 pages: handed back to the kernel on free, each reuse faults them in
    assert _faults("default") >= 1_000
    assert _faults("keep") < 200
