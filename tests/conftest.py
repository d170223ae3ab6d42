"""Shared test configuration: the real-kernel plugin (tests/kernel/plugin.py) and pytester."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checks import _runas

# tests.kernel.plugin runs tests marked `kernel` inside the test VM and reports them here.
pytest_plugins = ["tests.kernel.plugin", "pytester"]


@pytest.fixture(autouse=True)
def _commands_as_self() -> Iterator[None]:
    """Leave no command_user= identity behind a test that started a daemon in-process."""
    yield
    _runas.use(_runas.SAME)
