"""Helpers shared by the system tests: run `healthd` as a user does, wait for a state."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

DEADLINE = 15.0  # seconds any awaited state may take (a daemon coming up or going)


def healthd(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m healthd ARGS` and return its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "healthd", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def wait_for(what: Callable[[], object], deadline: float = DEADLINE) -> object:
    """Return the first true value of what(); fail once the deadline has passed."""
    end = time.monotonic() + deadline
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("state not reached before the deadline")
        time.sleep(0.1)
