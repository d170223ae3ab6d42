"""`reload` and `force-reload`: check the configuration, then HUP the running daemon.

A broken file exits 2 and the daemon is not signalled (it would refuse the file and keep
running unchanged anyway).
"""

from __future__ import annotations

import argparse
import signal

from healthd import pidfile
from healthd.commands.common import (
    EXIT_CONFIG,
    EXIT_FAIL,
    EXIT_OK,
    find,
    load,
    locate,
    out,
    send,
)


def reload(ns: argparse.Namespace) -> int:
    """`reload`/`force-reload`: check the configuration, then HUP the daemon."""
    inst = locate(ns)
    if inst is None:
        return EXIT_FAIL
    st = find(inst)
    if st.state is not pidfile.State.RUNNING or st.pid is None:
        out(f"ldirectord is stopped for {inst.path}")
        return EXIT_FAIL
    if load(inst) is None:
        return EXIT_CONFIG
    return EXIT_OK if send(st.pid, signal.SIGHUP) else EXIT_FAIL
