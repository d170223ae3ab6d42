"""`stop`: TERM the daemon and wait (bounded) for it to exit, without reading the config.

Unlike ldirectord, stop never loads the configuration, so a broken file never detaches a
running daemon; it exits 0 unless the signal is refused, as ldirectord's does.
"""

from __future__ import annotations

import argparse
import signal

from healthd import pidfile
from healthd.commands.common import EXIT_FAIL, EXIT_OK, Instance, err, find, locate, send

STOP_WAIT = 60.0  # seconds `stop` waits for the daemon to exit


def terminate(inst: Instance) -> tuple[int, bool]:
    """TERM the daemon and wait for it; return stop's exit code and whether it is gone."""
    st = find(inst)
    if st.state is pidfile.State.RUNNING and st.pid is not None:
        if not send(st.pid, signal.SIGTERM):
            return EXIT_FAIL, False
        # ldirectord returns at once; waiting lets Pacemaker and restart rely on "stopped"
        if not pidfile.wait_gone(st.pid, STOP_WAIT):
            err(f"healthd: pid {st.pid} still running {STOP_WAIT:g}s after TERM")
            return EXIT_OK, False  # stop exits 0 here, as ldirectord's
    return EXIT_OK, True


def stop(ns: argparse.Namespace) -> int:
    """`stop`: TERM the daemon and wait (bounded) for it to exit; exit 0 unless TERM is refused."""
    inst = locate(ns)
    return EXIT_FAIL if inst is None else terminate(inst)[0]
