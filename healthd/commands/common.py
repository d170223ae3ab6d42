"""What the lifecycle verbs share: an instance's identity, its configuration, its daemon's state.

Messages and exit codes are ldirectord's (ldirectord.md §1.3-§1.4): 0 running/success, 1 not
found or stale, 2 configuration error, 3 stopped. Light on purpose: `run` and `start` mark
their command line (healthd.marker, which may re-exec) before loading anything heavy, so
this imports no logging, no asyncio and no configuration reader until a function needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from healthd import marker, pidfile
from healthd.errors import ConfigErrors, HealthdError

if TYPE_CHECKING:
    from healthd.model import Config

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_CONFIG = 2
EXIT_STOPPED = 3


@dataclass(frozen=True, slots=True)
class Instance:
    """One configuration's identity: names, pid file and control socket."""

    config_arg: str | None
    path: str  # the configuration as ldirectord's lookup found it (used in messages)

    @property
    def pid_path(self) -> str:
        return pidfile.pidfile_path(self.config_arg)

    @property
    def control_path(self) -> str:
        from healthd import control

        return control.socket_path(self.path)


def err(text: str) -> None:
    """Print one message on stderr."""
    print(text.rstrip("\n"), file=sys.stderr, flush=True)


def out(text: str) -> None:
    """Print one line on stdout."""
    print(text.rstrip("\n"), flush=True)


def locate(ns: argparse.Namespace) -> Instance | None:
    """Return the instance for the config named on the command line, or None (message shown)."""
    from healthd.config.lookup import lookup

    try:
        path = lookup(ns.config_arg)
    except (HealthdError, OSError) as exc:
        err(f"healthd: {exc}")
        return None
    return Instance(ns.config_arg, path)


def load(inst: Instance) -> Config | None:
    """Return the parsed configuration, or None after printing every error."""
    from healthd.config import format_errors, load_with_warnings

    try:
        config, warnings = load_with_warnings(inst.path)
    except ConfigErrors as errs:
        err(format_errors(errs))
        return None
    if warnings:
        err(format_errors(warnings))
    return config


def find(inst: Instance) -> pidfile.PidStatus:
    """Return the daemon's state: its pid file, else a control socket that answers."""
    from healthd import control

    st = pidfile.check(inst.pid_path)
    if st.state is not pidfile.State.STOPPED:
        return st
    # a daemon run by systemd may have no pid file (read-only /run); its socket still answers
    with contextlib.suppress(control.ControlError):
        info = control.query(inst.control_path, timeout=1.0).get("daemon")
        pid = info.get("pid") if isinstance(info, dict) else None
        if isinstance(pid, int) and pidfile.cmdline(pid) is not None:
            return pidfile.PidStatus(pidfile.State.RUNNING, inst.pid_path, pid)
    return st


def prepare(ns: argparse.Namespace) -> tuple[Instance, Config] | int:
    """Return the instance and its loaded config, or the exit code that says why not."""
    if not ns.debug:
        marker.ensure()  # the cmdline carries "ldirectord" (a new title, else a re-exec)
    inst = locate(ns)
    if inst is None:
        return EXIT_FAIL
    config = load(inst)
    if config is None:
        return EXIT_CONFIG
    return inst, config


def send(pid: int, sig: signal.Signals) -> bool:
    """Send sig to pid; a pid already gone counts as sent. Say why and return False if not."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        err(f"healthd: cannot send {sig.name} to pid {pid}: {exc.strerror}")
        return False
    return True
