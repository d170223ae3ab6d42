"""The `status` verb: ldirectord's lines and exit codes for a daemon and its execute= instances.

ldirectord's status runs `ldirectord NAME status` for each execute= instance of a running
daemon (ld_cmd_children); this asks each instance the same way in-process, so the formats
can nest each instance's view in its parent's. The exit code is the daemon's own, as in
ldirectord (Pacemaker's monitor reads it): an instance that does not run shows in the lines
and the view, not in the code. It reads no configuration unless the running daemon cannot
tell its own execute= list.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from healthd import control, pidfile
from healthd.commands.common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_STOPPED,
    Instance,
    err,
    find,
    locate,
    out,
)
from healthd.errors import HealthdError


@dataclass(slots=True)
class Report:
    """What status prints: stdout for the machine-readable formats, the exit code, the seen."""

    fmt: str
    seen: set[str] = field(default_factory=set)  # configs already reported (execute= loops)

    def stopped(self, text: str) -> None:
        # the stopped line is ldirectord's stdout line; keep stdout parseable in the formats
        (out if self.fmt == "text" else err)(text)


def status(ns: argparse.Namespace) -> int:
    """`status`: the daemon's lines, then each execute= instance's; the daemon's exit code."""
    inst = locate(ns)
    if inst is None:
        return EXIT_FAIL
    fmt = getattr(ns, "format", "text")
    code, view = _status(inst, Report(fmt))
    if fmt != "text":
        out(control.render(view, fmt))
    return code


def _status(inst: Instance, report: Report) -> tuple[int, dict[str, object]]:
    """Report one instance and, when it runs, its execute= instances; return code and view."""
    report.seen.add(inst.path)
    st = find(inst)
    code = _say(inst, st, report)
    view: dict[str, object] = {"config": inst.path, "status": st.state.value, "pid": st.pid}
    if st.state is not pidfile.State.RUNNING:
        return code, view  # ldirectord: a stopped daemon's instances are not asked
    try:
        view.update(control.query(inst.control_path))
    except control.ControlError as exc:
        view["error"] = str(exc)
    if report.fmt == "text":
        for line in cluster_lines(view):
            out(line)
    names = _execute_names(inst, view)
    if isinstance(names, str):
        err(f"healthd: cannot list the execute= instances of {inst.path}: {names}")
        view["instances_error"] = names
        return code, view
    children: list[dict[str, object]] = []
    for name in names:
        child_view = _child(name, report)
        if child_view is not None:
            children.append(child_view)
    view["instances"] = children
    return code, view


def cluster_lines(view: dict[str, object]) -> list[str]:
    """Return the text lines for the sync daemon and the announced routes, if configured."""
    lines = []
    syncd = view.get("syncd")
    if isinstance(syncd, dict):
        running = syncd.get("running") or []
        shown = ", ".join(_daemon(d) for d in running if isinstance(d, dict)) or "none running"
        error = f" (error: {syncd['error']})" if syncd.get("error") else ""
        lines.append(f"sync daemon: {shown}{error}")
    routes = view.get("routes")
    for route in routes if isinstance(routes, list) else ():
        if isinstance(route, dict):
            state = "announced" if route.get("announced") else "withdrawn"
            error = " (kernel refuses the change)" if route.get("error") else ""
            lines.append(f"{route.get('route')}: {state}{error}")
    return lines


def _daemon(d: dict[str, object]) -> str:
    return f"{d.get('role')} on {d.get('interface')} (syncid {d.get('syncid')})"


def _say(inst: Instance, st: pidfile.PidStatus, report: Report) -> int:
    """Print ldirectord's lines for one instance and return its own exit code."""
    if st.state is pidfile.State.RUNNING:
        err(f"ldirectord for {inst.path} is running with pid: {st.pid}")
        return EXIT_OK
    if st.state is pidfile.State.STALE:
        err(f"ldirectord stale pid file {st.path} for {inst.path}")
        report.stopped(f"ldirectord is stopped for {inst.path}")
        return EXIT_FAIL
    report.stopped(f"ldirectord is stopped for {inst.path}")
    return EXIT_STOPPED


def _child(name: str, report: Report) -> dict[str, object] | None:
    """Report one execute= instance as `healthd NAME status` would; None if already reported."""
    from healthd.config import lookup

    try:
        path = lookup(name)
    except (HealthdError, OSError) as exc:
        err(f"healthd: {exc}")
        return {"config": name, "status": "not_found", "pid": None, "error": str(exc)}
    if path in report.seen:
        return None  # ldirectord would ask it again, for ever
    return _status(Instance(name, path), report)[1]


def _execute_names(inst: Instance, view: dict[str, object]) -> list[str] | str:
    """Return the running daemon's execute= names, else the file's; a string says why not."""
    daemon = view.get("daemon")
    names = daemon.get("execute") if isinstance(daemon, dict) else None
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return names
    # a daemon that does not answer (or an older one): the file says what it was told to
    # run; only its execute= lines are read, so an error elsewhere in it does not matter
    from healthd.config.lexer import lex
    from healthd.config.parser import parse

    try:
        with open(inst.path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as exc:
        return f"cannot read {inst.path}: {exc.strerror or exc}"
    return list(parse(lex(text, inst.path)).execute)
