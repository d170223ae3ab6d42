"""healthd.loop: the daemon runs on uvloop when it is importable, else on the stdlib loop."""

from __future__ import annotations

import asyncio
import sys

import pytest
from structlog.testing import capture_logs

from healthd import logs
from healthd.loop import loop_factory, run


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_run_uses_uvloop_when_installed() -> None:
    uvloop = pytest.importorskip("uvloop")
    assert loop_factory() is uvloop.new_event_loop
    assert run(_loop_module()).startswith("uvloop")


def test_without_uvloop_the_stdlib_loop_runs_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    with capture_logs() as events:
        assert loop_factory() is None
        assert run(_loop_module()).startswith("asyncio")
    fallbacks = [e for e in events if e["event"] == logs.LOOP_FALLBACK]
    assert fallbacks, events
    assert fallbacks[0]["log_level"] == "debug"
