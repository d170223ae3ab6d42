"""The daemon's event loop: uvloop when it is importable, the stdlib loop otherwise.

Only the processes that run the daemon (and the benchmark's healthd side) go through here;
tests keep pytest-asyncio's stdlib loops. Nothing in healthd depends on which loop it runs on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from healthd import logs

T = TypeVar("T")

log = logs.get_logger("healthd.loop")


Factory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory() -> Factory | None:
    """Return uvloop's loop constructor, or None (the stdlib loop) when uvloop is missing."""
    try:
        import uvloop  # optional at run time: a missing wheel falls back to asyncio
    except ImportError as exc:
        log.debug(logs.LOOP_FALLBACK, loop="asyncio", detail=str(exc))
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], *, factory: Factory | None = None) -> T:
    """Run `main` to completion on a new loop from `factory` (default: loop_factory())."""
    with asyncio.Runner(loop_factory=factory or loop_factory()) as runner:
        return runner.run(main)
