"""Fixtures for engine and scheduler tests: captured log events and engine cleanup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from tests.component.support import Harness


@pytest.fixture
def logs_captured() -> Iterator[list[dict[str, Any]]]:
    structlog.reset_defaults()
    with capture_logs() as events:
        yield events


@pytest.fixture
async def harnesses() -> AsyncIterator[list[Harness]]:
    made: list[Harness] = []
    yield made
    for h in made:
        if h.task is not None and not h.task.done():
            h.task.cancel()
            await asyncio.gather(h.task, return_exceptions=True)
