"""The foreground run (`healthd [-d] -c FILE`, the systemd form) and the pid file it keeps.

`start` with -d or supervised=yes stays in the foreground through here too. The daemon itself
is put together by healthd.app.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from healthd import pidfile
from healthd.commands.common import EXIT_FAIL, Instance, err, find, prepare

if TYPE_CHECKING:
    from healthd.model import Config


def foreground(inst: Instance, config: Config, debug: bool) -> int:
    """Run in the foreground; a pid file unless -d, supervised=yes or under systemd."""
    from healthd import app, loop

    # systemd tracks the main pid itself and keeps /run read-only (ProtectSystem=strict);
    # status and stop then find the daemon through its control socket
    under_systemd = bool(os.environ.get("NOTIFY_SOCKET"))
    # ldirectord: no pid file with -d or supervised=yes (l.1088-1097)
    pid_path = None if debug or under_systemd or config.supervised else inst.pid_path
    if pid_path is not None:
        try:
            pidfile.write(pid_path)
        except OSError as exc:
            # ProtectSystem=strict keeps /run read-only; status then asks the control socket
            err(f"healthd: cannot write pid file {pid_path}: {exc.strerror}")
            pid_path = None
    try:
        return loop.run(app.serve(inst, config, pid_path=pid_path, ready_fd=None, debug=debug))
    finally:
        if pid_path is not None:
            pidfile.remove(pid_path)


def run(ns: argparse.Namespace) -> int:
    """`healthd [-d] -c FILE`: run in the foreground (systemd Type=notify)."""
    prepared = prepare(ns)
    if isinstance(prepared, int):
        return prepared
    inst, config = prepared
    st = find(inst)
    if st.state is pidfile.State.RUNNING:
        err(f"ldirectord for {inst.path} is already running with pid: {st.pid}")
        return EXIT_FAIL
    return foreground(inst, config, ns.debug)
