"""Real processes for the pid-file tests: one that carries ldirectord's marker, one that is gone."""

from __future__ import annotations

import subprocess
import sys
import time

from healthd import pidfile


def spawn_marked() -> subprocess.Popen[bytes]:
    """Start a sleeping process whose cmdline carries the marker, once exec has finished."""
    argv = [sys.executable, "-X", "ldirectord-compatible", "-c", "import time; time.sleep(30)"]
    proc = subprocess.Popen(argv)
    for _ in range(500):  # right after vfork+exec the cmdline can still read empty
        if "ldirectord" in (pidfile.cmdline(proc.pid) or ""):
            return proc
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    raise AssertionError("marker process did not start")


def dead_pid() -> int:
    """The pid of a process that has already exited and been reaped."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)
