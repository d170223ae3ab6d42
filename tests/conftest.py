"""Shared test configuration: the real-kernel plugin (tests/kernel/plugin.py) and pytester."""

from __future__ import annotations

# tests.kernel.plugin runs tests marked `kernel` inside the test VM and reports them here.
pytest_plugins = ["tests.kernel.plugin", "pytester"]
