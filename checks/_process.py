"""Run one check command in its own process group and map its exit status to a Result.

Shared by checktype=external and external-perl: run as command_user= (checks._runas), no
shell, stdin and stdout from/to /dev/null, the first STDERR_LIMIT bytes of stderr kept for the
detail, and on timeout (or cancellation) the whole process group gets SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Final

from checks import _runas
from checks._util import LOCAL
from checks.base import CheckOptionError, Reason, Result, Target, host_text, timed

STDERR_LIMIT: Final = 4096  # bytes of stderr kept for the detail; the rest is drained
KILL_GRACE: Final = 0.5  # seconds between SIGTERM and SIGKILL to the process group


def checkcommand(options: Mapping[str, str], kind: str) -> str:
    """Return the `checkcommand` option; an empty one is a CheckOptionError."""
    command = options.get("checkcommand", "").strip()
    if not command:
        raise CheckOptionError("checkcommand", f"checktype={kind} needs a checkcommand")
    return command


def arguments(target: Target) -> list[str]:
    """Return ldirectord's arguments: <vip or fwmark> <vport or 0> <rip> <rport>."""
    # ldirectord: IPv6 addresses are passed in brackets; fwmark services pass the mark.
    if target.virtual_address is None:
        vip = str(target.fwmark)
    else:
        vip = host_text(target.virtual_address)
    return [vip, str(target.virtual_port), target.host, str(target.real_port)]


async def run(argv: Sequence[str], seconds: float, name: str) -> Result:
    """Run `argv` once within `seconds`; exit 0 is up. `name` is the command in details."""
    sw = timed()
    run_as = _runas.current()  # command_user=: never root unless configured
    try:
        proc = await asyncio.create_subprocess_exec(
            *run_as.argv(argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            **run_as.spawn_options(),  # type: ignore[arg-type]
        )
    except OSError as exc:
        # no descriptor for the pipe, no process or memory for the fork: healthd's shortage
        local = exc.errno in LOCAL or exc.errno == errno.EAGAIN
        reason = Reason.LOCAL_ERROR if local else Reason.EXEC_FAILED
        return sw.down(reason, f"cannot run {argv[0]}: {exc.strerror or exc}")
    try:
        async with asyncio.timeout(seconds):
            stderr = await _read_stderr(proc)
            code = await proc.wait()
    except TimeoutError:
        await _kill_group(proc)
        return sw.down(Reason.TIMEOUT, f"{name} killed after {seconds:g}s")
    except BaseException:
        await _kill_group(proc)  # cancelled by the scheduler: leave no process behind
        raise
    if code == 0:
        return sw.up("exit 0")
    return sw.down(Reason.EXIT_STATUS, _describe(code, stderr))


async def _read_stderr(proc: asyncio.subprocess.Process) -> bytes:
    """Read stderr to EOF, keeping only the first STDERR_LIMIT bytes."""
    assert proc.stderr is not None
    kept = b""
    while chunk := await proc.stderr.read(65536):
        if len(kept) < STDERR_LIMIT:
            kept += chunk[: STDERR_LIMIT - len(kept)]
    return kept


def _describe(code: int, stderr: bytes) -> str:
    text = f"killed by signal {_signame(-code)}" if code < 0 else f"exit {code}"
    first = stderr.decode("utf-8", "replace").strip().splitlines()
    return f"{text}: {first[0].strip()}" if first else text


def _signame(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the command's process group, then SIGKILL it if the command lingers."""
    # The command is a session leader (start_new_session), so its pgid equals its pid.
    _signal_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(KILL_GRACE):
            await proc.wait()
    # Children that ignored SIGTERM (or the leader itself) get SIGKILL.
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
