"""Fixtures for the system tests: the environment a `healthd` subprocess runs in."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator

import pytest

from healthd import pidfile


@pytest.fixture
def env(tmp_path) -> Iterator[dict[str, str]]:
    """The in-memory table, pid files in tmp_path, control sockets in a short directory."""
    with tempfile.TemporaryDirectory(prefix="hd") as rundir:  # short: socket paths are limited
        e = dict(os.environ)
        e.pop("NOTIFY_SOCKET", None)
        e.update(HEALTHD_DRIVER="fake", HEALTHD_PIDDIR=str(tmp_path), HEALTHD_RUNDIR=rundir)
        e["HEALTHD_STATEDIR"] = str(tmp_path)  # runtime overrides (healthd ctl), if any
        yield e
        # a test that failed half-way must not leave its daemon behind
        for path in tmp_path.glob("ldirectord.*.pid"):
            pid = pidfile.read_pid(str(path))
            if pid is not None and pidfile.is_instance(pid):
                os.kill(pid, signal.SIGKILL)
