"""`restart` and `try-restart`: check the configuration, stop the daemon, start it again.

A broken file leaves the running daemon alone; try-restart does nothing when it is stopped.
"""

from __future__ import annotations

import argparse

from healthd import pidfile
from healthd.commands import stop as stopping
from healthd.commands.common import EXIT_FAIL, EXIT_OK, err, find, locate, prepare
from healthd.commands.start import start_instance


def restart(ns: argparse.Namespace) -> int:
    """`restart`: check the configuration first, then stop and start."""
    prepared = prepare(ns)  # a broken file leaves the running daemon alone
    if isinstance(prepared, int):
        return prepared
    inst, config = prepared
    if not stopping.terminate(inst)[1]:
        # the old daemon was not told to stop, or outlived STOP_WAIT: start would find it
        # running and exit 0 with the old configuration still in force
        err(f"healthd: not restarted: the old daemon for {inst.path} is still running")
        return EXIT_FAIL
    return start_instance(inst, config, ns.debug)


def try_restart(ns: argparse.Namespace) -> int:
    """`try-restart`: restart only if running; exit 0 when stopped."""
    inst = locate(ns)
    if inst is None:
        return EXIT_FAIL
    if find(inst).state is not pidfile.State.RUNNING:
        return EXIT_OK
    return restart(ns)
