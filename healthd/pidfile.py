"""ldirectord's pid file: its name, its liveness test, and writing and removing it safely.

The file is /run/ldirectord.<CFGNAME>.pid, where CFGNAME is `ldirectord` when no config was
named, else the basename of the name given (ldirectord §1.3). A process counts as the running
instance only if /proc/PID/cmdline contains "ldirectord", as ldirectord and its OCF agent test.
"""

from __future__ import annotations

import contextlib
import enum
import os
import time
from dataclasses import dataclass

from healthd.marker import MARKER

DEFAULT_PIDDIR = "/run"  # ldirectord: /var/run, a symlink to /run on Debian
PIDDIR_ENV = "HEALTHD_PIDDIR"  # testing only: where pid files go


def cfgname(config_arg: str | None) -> str:
    """Return ldirectord's CFGNAME: `ldirectord` for no config, else the name's basename."""
    if config_arg is None:
        return "ldirectord"
    # ldirectord: the text after the last '/', even when that is empty
    return config_arg.rsplit("/", 1)[-1]


def piddir() -> str:
    """Return the directory pid files live in (HEALTHD_PIDDIR overrides /run, for tests)."""
    return os.environ.get(PIDDIR_ENV) or DEFAULT_PIDDIR


def pidfile_path(config_arg: str | None) -> str:
    """Return the pid file for the config named on the command line."""
    return os.path.join(piddir(), f"ldirectord.{cfgname(config_arg)}.pid")


class State(enum.Enum):
    """What a pid file says about the daemon."""

    RUNNING = "running"
    STOPPED = "stopped"  # no pid file
    STALE = "stale"  # a pid file whose process is gone or is not ours


@dataclass(frozen=True, slots=True)
class PidStatus:
    """The state of one pid file and the pid it holds (None if unreadable or absent)."""

    state: State
    path: str
    pid: int | None = None


def read_pid(path: str) -> int | None:
    """Return the pid on the file's first line, or None when absent or not a number."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            first = f.readline().strip()
    except OSError:
        return None
    return int(first) if first.isdigit() and int(first) > 0 else None


def cmdline(pid: int) -> str | None:
    """Return /proc/PID/cmdline with NULs as spaces, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_instance(pid: int) -> bool:
    """Return whether pid is alive and its command line contains "ldirectord"."""
    line = cmdline(pid)
    return line is not None and MARKER in line


def check(path: str) -> PidStatus:
    """Return whether the daemon behind the pid file is running, stopped or stale."""
    if not os.path.exists(path):
        return PidStatus(State.STOPPED, path)
    pid = read_pid(path)
    if pid is not None and is_instance(pid):
        return PidStatus(State.RUNNING, path, pid)
    return PidStatus(State.STALE, path, pid)


def wait_gone(pid: int, timeout: float, poll: float = 0.05) -> bool:
    """Wait until pid is no longer a running instance; return False on timeout."""
    deadline = time.monotonic() + timeout
    while is_instance(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def write(path: str, pid: int | None = None) -> None:
    """Write pid (default: ours) atomically: a reader never sees an empty file."""
    pid = os.getpid() if pid is None else pid
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{pid}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        try:
            os.write(fd, f"{pid}\n".encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):  # leave no half-written temporary behind
            os.unlink(tmp)
        raise


def remove(path: str, pid: int | None = None) -> bool:
    """Remove the pid file only if it still holds pid (default: ours); return if removed."""
    pid = os.getpid() if pid is None else pid
    if read_pid(path) != pid:
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
