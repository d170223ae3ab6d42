"""The cyclic garbage collector, set for a daemon whose heap is mostly its own configuration.

Imports nothing of healthd, so the command line can tune it before anything else loads.

With thousands of reals, the objects built from the config (virtuals, reals, probes, one
prober task each) outnumber by far the short-lived ones a check run makes. Python's default
collector rescans them all again and again: at 5,000 reals checked each second it took about
15 % of healthd's CPU (bench/RESULTS.md). Two standard remedies, as long-running Python
services use them:

- `tune()` at start, before the daemon's modules load (healthd.cli): the youngest
  generation is collected after YOUNG new container objects instead of 700, so a check's
  garbage is mostly freed by reference counting first (and the imports run faster);
- `settle()` each time a config is in force (start, every reload; the engine listener
  `healthd.plugins.Settle` calls it): one full collection, then everything left is frozen
  out of later collections. It unfreezes first, so what an old config held in reference
  cycles is collected at the next reload.

Memory is not at stake: reference counting still frees every object outside a cycle at once.

`keep_large_blocks()` is for the operator's server: a /metrics scrape at thousands of reals
builds about 8 MB of text and frees it again. glibc's malloc hands such blocks back to the
kernel at once (mmap, or trimming the heap's top), so every scrape faulted tens of megabytes
in again, 10-25 ms of system CPU per scrape at 5,000 reals (bench/RESULTS.md). Raising the
two thresholds keeps them for the next scrape; the process holds its high-water mark instead.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG: Final = 10_000  # new container objects between two young collections (Python: 700)
M_TRIM_THRESHOLD: Final = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD: Final = -3
LARGE_BLOCKS: Final = 32 << 20  # kept in the heap up to this size (glibc's own maximum)
KEPT_TOP: Final = 64 << 20  # free memory at the heap's top kept, not handed back


def tune() -> None:
    """Collect the youngest generation less often (the older thresholds stay Python's)."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)


def keep_large_blocks() -> bool:
    """Keep freed large blocks for reuse (glibc only); return whether malloc took it."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, ...): the allocator's own behaviour stays
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGE_BLOCKS)) and bool(
        mallopt(M_TRIM_THRESHOLD, KEPT_TOP)
    )


def settle() -> int:
    """Collect everything, then freeze what survives; return the objects now frozen."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
