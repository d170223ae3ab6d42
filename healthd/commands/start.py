"""`start`: daemonize (double fork, setsid), write the pid file, wait until the daemon is up.

Exits 0 at once when the daemon already runs, as ldirectord's start does; with -d or
supervised=yes it stays in the foreground (healthd.commands.run).
"""

from __future__ import annotations

import argparse
import os
import select
import time
from typing import TYPE_CHECKING

from healthd import pidfile
from healthd.commands.common import EXIT_FAIL, EXIT_OK, Instance, err, find, prepare
from healthd.commands.run import foreground

if TYPE_CHECKING:
    from healthd.model import Config

START_WAIT = 60.0  # seconds `start` waits for the daemon to come up


def _daemonize(inst: Instance, config: Config) -> int:
    """Double-fork, setsid, chdir /, stdio to /dev/null; wait for the grandchild to be ready."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked processes
        os.close(r)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        os._exit(_grandchild(inst, config, w))
    os.close(w)
    os.waitpid(child, 0)
    return _await_ready(r)


def _grandchild(inst: Instance, config: Config, ready_fd: int) -> int:  # pragma: no cover
    from healthd import app, loop

    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    # keep none of the launcher's descriptors: a process started on uvloop inherits more
    # than its stdio, and an execute= hook running `start` waits for its pipe to close
    os.closerange(3, ready_fd)
    os.closerange(ready_fd + 1, os.sysconf("SC_OPEN_MAX"))
    try:
        pidfile.write(inst.pid_path)
    except OSError as exc:
        app.report_failure(ready_fd, f"Can not open {inst.pid_path}: {exc.strerror}")
        return EXIT_FAIL
    try:
        return loop.run(app.serve(inst, config, pid_path=inst.pid_path, ready_fd=ready_fd))
    finally:
        pidfile.remove(inst.pid_path)


def _await_ready(fd: int) -> int:
    """Read the grandchild's first report: `ready`, `error MESSAGE`, or nothing (it died)."""
    data = b""
    deadline = time.monotonic() + START_WAIT
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while b"\n" not in data and (left := deadline - time.monotonic()) > 0:
            if not select.select([pipe], [], [], left)[0]:
                break
            chunk = pipe.read(4096)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\n", 1)[0].decode(errors="replace")
    if line == "ready":
        return EXIT_OK
    if line.startswith("error "):
        err(f"healthd: {line[6:]}")
    else:
        err("healthd: the daemon did not start (see the log)")
    return EXIT_FAIL


def start_instance(inst: Instance, config: Config, debug: bool) -> int:
    """Start the daemon of `inst` unless it runs; return start's exit code."""
    st = find(inst)
    if st.state is pidfile.State.RUNNING:
        return EXIT_OK  # ldirectord: start while running prints nothing and exits 0
    if debug or config.supervised:
        return foreground(inst, config, debug)  # ldirectord: supervised=yes stays in front
    if not os.access(os.path.dirname(inst.pid_path) or ".", os.W_OK):
        err(f"Can not open {inst.pid_path}: permission denied")
        return EXIT_FAIL
    return _daemonize(inst, config)


def start(ns: argparse.Namespace) -> int:
    """`start`: daemonize and write the pid file; exit 0 at once if already running."""
    prepared = prepare(ns)
    if isinstance(prepared, int):
        return prepared
    inst, config = prepared
    return start_instance(inst, config, ns.debug)
