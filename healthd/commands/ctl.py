"""`healthd ctl drain|ready|maint|weight VIRTUAL REAL [N]`: change one real at runtime.

Sent to the running daemon over its root-only control socket (healthd.control), answered
by healthd.runtime. The daemon checks everything (the names against its running
configuration, N's range) and changes nothing on a refusal. One line either way: the new
state on stdout and exit 0, or the reason on stderr and exit 1.
"""

from __future__ import annotations

import argparse

from healthd import control
from healthd.commands.common import EXIT_FAIL, EXIT_OK, err, locate, out


def ctl(ns: argparse.Namespace) -> int:
    """Send one runtime-control request to the daemon of the configuration named."""
    inst = locate(ns)
    if inst is None:
        return EXIT_FAIL
    request: dict[str, object] = {"op": ns.action, "virtual": ns.virtual, "real": ns.real}
    if ns.value is not None:
        request["value"] = ns.value
    try:
        answer = control.call(inst.control_path, "ctl", request)
    except control.ControlError as exc:
        err(f"healthd: {exc} (is the daemon for {inst.path} running?)")
        return EXIT_FAIL
    if "ok" in answer:
        out(str(answer["ok"]))
        return EXIT_OK
    err(f"healthd: {answer.get('error', 'malformed answer')}")
    return EXIT_FAIL
