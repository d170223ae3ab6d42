"""The monitorfile: one line per check result, appended in ldirectord's format.

`[<ctime>] [<pid>] <real id> [<up|down>] <message>` (ldirectord.md §11.4). The file is opened
and closed for every line, so logrotate needs no signal. A write failure is logged, never
fatal (ldirectord dies on it).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable

from checks.base import Result, host_text
from healthd import logs
from healthd.model import CheckType, Real, Virtual
from healthd.plugins import Plugin

log = logs.get_logger("healthd.monitor")

_ESCAPE = re.compile(r"[%|\r\n]")


def server_str(real: Real) -> str:
    """Return the real's address as ldirectord stores it (IPv6 in brackets)."""
    return host_text(real.address)


def check_str(virtual: Virtual) -> str:
    """Return the check part of ldirectord's real id (get_real_id_str)."""
    spec = virtual.check
    if spec.checktype in (CheckType.NEGOTIATE, CheckType.COMBINED):
        return f"{spec.checktype}:{spec.service}"
    if spec.checktype in (CheckType.EXTERNAL, CheckType.EXTERNAL_PERL):
        return f"{spec.checktype}:{spec.checkcommand}"
    return str(spec.checktype)


def real_id(virtual: Virtual, real: Real) -> str:
    """Return ldirectord's real id as the monitorfile shows it.

    The id's fields are joined by `:`; in the file every run of `:` becomes one space and
    every backslash (from quotemeta) is removed, so IPv6 addresses lose their colons too.
    """
    spec = virtual.check
    request = real.request if real.request is not None else spec.request
    receive = real.receive if real.receive is not None else spec.receive
    fields = [
        check_str(virtual),
        str(virtual.proto),
        server_str(real),
        str(real.port),
        spec.virtualhost or "",
        "" if spec.checkport is None else str(spec.checkport),
        str(real.weight),
        str(real.forward),
        request,
        receive,
    ]
    # ldirectord: $real_log_msg =~ tr/:/ /s; s/\\//g
    return re.sub(r":+", " ", ":".join(fields)).replace("\\", "")


def escape(message: str) -> str:
    """URI-escape `%`, `|`, CR and LF as ldirectord does; an empty message is `-`."""
    if not message:
        return "-"
    return _ESCAPE.sub(lambda m: f"%{ord(m.group()):02x}", message)


def monitor_line(virtual: Virtual, real: Real, result: Result, when: float, pid: int) -> str:
    """Return one monitorfile line (with its newline) for a check result."""
    # ldirectord: scalar localtime, e.g. "Sat Nov  1 07:05:09 2026"
    stamp = time.asctime(time.localtime(when))
    state = "up" if result.up else "down"
    message = result.detail or ("-" if result.up else result.reason)
    return f"[{stamp}] [{pid}] {real_id(virtual, real)} [{state}] {escape(message)}\n"


def append(path: str, line: str) -> None:
    """Append one line to `path`, opening and closing the file (logrotate-friendly)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)


class MonitorFile(Plugin):
    """Engine listener that writes every check result of a virtual to its monitorfile."""

    def __init__(
        self,
        *,
        now: Callable[[], float] = time.time,
        pid: Callable[[], int] = os.getpid,
    ) -> None:
        self._now = now
        self._pid = pid
        self._lock = asyncio.Lock()  # keeps lines whole and in order
        self._failed: set[str] = set()  # paths whose failure was already logged

    async def on_result(self, virtual: Virtual, real: Real, result: Result) -> None:
        """Append the result's line to the virtual's monitorfile, if it has one."""
        path = virtual.monitorfile
        if not path:
            return
        line = monitor_line(virtual, real, result, self._now(), self._pid())
        async with self._lock:
            try:
                await asyncio.to_thread(append, path, line)
            except OSError as exc:
                if path not in self._failed:
                    self._failed.add(path)
                    log.warning(logs.HOOK_FAILED, hook="monitorfile", path=path, detail=str(exc))
                return
        self._failed.discard(path)
