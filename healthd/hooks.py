"""Side effects that are not IPVS: fallbackcommand and callback, run as isolated subprocesses.

Every hook runs in its own session with stdin from /dev/null, under a timeout (its process
group is killed when it expires), and its failure is logged, never raised: a broken script
must not stop the daemon. Hooks for one key run in order; different keys run concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from checks import _runas
from checks.base import host_text
from healthd import logs
from healthd.model import Proto, Virtual

log = logs.get_logger("healthd.hooks")

HOOK_TIMEOUT: Final = 60.0  # seconds; ldirectord waits forever (system()), healthd does not
KILL_GRACE: Final = 2.0  # seconds between SIGTERM and SIGKILL of a timed-out hook
OUTPUT_GRACE: Final = 0.5  # seconds to read what an exited hook left in its stderr pipe
_OUTPUT_LIMIT: Final = 4096

# Perl's system(STRING) hands the string to /bin/sh -c when it holds one of these, and
# otherwise splits it on whitespace and execs it directly (perlfunc exec).
_SHELL_METACHARS: Final = frozenset("$&*(){}[]'\";\\|?<>~`\n")


def command_argv(command: str, args: Sequence[str]) -> list[str]:
    """Return the argv that Perl's system("COMMAND ARGS...") would run (shell only if needed)."""
    # ldirectord: system("$cmd $args") is one string, so the shell rule of perlfunc applies
    line = " ".join([command, *args])
    if any(ch in _SHELL_METACHARS for ch in line):
        return ["/bin/sh", "-c", line]
    return line.split()


def fallback_args(virtual: Virtual, active: bool) -> list[str]:
    """Return fallbackcommand's arguments: `start|stop <vip>:<vport> <proto>` (ldirectord §9.7)."""
    if virtual.proto is Proto.FWM:
        # ldirectord passes ":0 fwm" (an empty vserver); healthd passes the mark: "5:0 fwm"
        server = str(virtual.fwmark)
    else:
        assert virtual.address is not None
        server = host_text(virtual.address)
    return ["start" if active else "stop", f"{server}:{virtual.port}", str(virtual.proto)]


@dataclass(frozen=True, slots=True)
class HookResult:
    """How one hook run ended: its exit code (negative: the signal that ended it; None if
    it never ran or was killed at its timeout)."""

    argv: tuple[str, ...]
    returncode: int | None
    reason: str  # "ok", "exit_status", "timeout", "exec_failed", "error"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def _first_line(data: bytes) -> str:
    text = data[:_OUTPUT_LIMIT].decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else ""


def _killpg(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Kill a timed-out hook's process group: SIGTERM, then SIGKILL after a grace period."""
    _killpg(proc.pid, signal.SIGTERM)
    try:
        async with asyncio.timeout(KILL_GRACE):
            await proc.wait()
    except TimeoutError:
        _killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


async def run_command(
    argv: Sequence[str],
    *,
    limit: float = HOOK_TIMEOUT,
    stdin: bytes | None = None,
    as_command_user: bool = True,
) -> HookResult:
    """Run argv in its own session under a timeout and report how it ended; never raises.

    `stdin` is written to the command's standard input, which is then closed (default:
    /dev/null). It runs as command_user= (checks._runas.current()) unless `as_command_user`
    is false: healthd's own `execute=` instances keep the daemon's rights.

    Its end is the command's own exit, as with ldirectord's system(): a service it started
    in the background may hold its stderr open for ever, and is neither waited for nor
    killed (its stderr is drained, so it never meets a closed pipe).
    """
    args = tuple(argv)
    if not args:
        return HookResult(args, None, "exec_failed", "empty command")
    # stderr is a pipe of our own, not the subprocess transport's: asyncio (3.11) reports a
    # process's exit only once every pipe it was given is closed, which a background service
    # may never do
    read_end, write_end = os.pipe()
    run_as = _runas.current() if as_command_user else _runas.SAME
    try:
        proc = await asyncio.create_subprocess_exec(
            *run_as.argv(args),
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=write_end,
            start_new_session=True,
            **run_as.spawn_options(),  # type: ignore[arg-type]
        )
    except OSError as exc:
        os.close(read_end)
        return HookResult(args, None, "exec_failed", exc.strerror or str(exc))
    finally:
        os.close(write_end)
    err = bytearray()
    drain = asyncio.create_task(_drain(read_end, err), name=f"stderr of {args[0]}")
    _draining.add(drain)
    drain.add_done_callback(_draining.discard)
    try:
        async with asyncio.timeout(limit):
            if stdin is not None:
                await _feed(proc, stdin)
            await proc.wait()
    except TimeoutError:
        await _reap(proc)
        return HookResult(args, None, "timeout", f"killed after {limit:g}s")
    except asyncio.CancelledError:
        await _reap(proc)
        raise
    # what the command wrote before it exited is in the pipe already: a moment reads it
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(OUTPUT_GRACE):
            await asyncio.shield(drain)
    code = proc.returncode
    if code == 0:
        return HookResult(args, 0, "ok")
    ended = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
    first = _first_line(bytes(err))
    return HookResult(args, code, "exit_status", f"{ended}: {first}" if first else ended)


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    """Write data to the command's stdin and close it; a command that does not read is no error."""
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    proc.stdin.close()


_draining: set[asyncio.Task[None]] = set()  # drains outliving their command, kept referenced


async def _drain(fd: int, into: bytearray) -> None:
    """Read the pipe `fd` to its end, keeping its first _OUTPUT_LIMIT bytes in `into`."""
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader()
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream), pipe
        )
        try:
            while chunk := await stream.read(65536):
                if len(into) < _OUTPUT_LIMIT:
                    into += chunk[: _OUTPUT_LIMIT - len(into)]
        finally:
            transport.close()


async def run_hook(
    name: str, argv: Sequence[str], *, limit: float = HOOK_TIMEOUT, as_command_user: bool = True
) -> HookResult:
    """Run one hook and log how it went (`hook.ran` or `hook.failed`); never raises."""
    try:
        result = await run_command(argv, limit=limit, as_command_user=as_command_user)
    except Exception as exc:  # isolation boundary: a hook never takes the daemon down
        log.exception(logs.HOOK_FAILED, hook=name, argv=list(argv), reason="error")
        return HookResult(tuple(argv), None, "error", str(exc))
    if result.ok:
        log.info(logs.HOOK_RAN, hook=name, argv=list(result.argv), status=result.returncode)
    else:
        log.warning(
            logs.HOOK_FAILED,
            hook=name,
            argv=list(result.argv),
            reason=result.reason,
            detail=result.detail,
        )
    return result


async def run_callback(
    command: str, config_path: str, *, limit: float = HOOK_TIMEOUT
) -> HookResult:
    """Run `callback` with the configuration path as ldirectord does: `CMD CONFIGPATH` (§9.15)."""
    return await run_hook("callback", command_argv(command, [config_path]), limit=limit)


class HookRunner:
    """Runs hooks in the background: in submission order per key, concurrently across keys."""

    def __init__(self, *, limit: float = HOOK_TIMEOUT) -> None:
        self._limit = limit
        self._tails: dict[object, asyncio.Task[HookResult]] = {}
        self._tasks: set[asyncio.Task[HookResult]] = set()

    def submit(self, key: object, name: str, argv: Sequence[str]) -> asyncio.Task[HookResult]:
        """Queue a hook after the previous one for the same key; return its task."""
        previous = self._tails.get(key)
        task = asyncio.create_task(self._after(previous, name, list(argv)))
        self._tails[key] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def fallback(self, virtual: Virtual, active: bool) -> asyncio.Task[HookResult] | None:
        """Queue the virtual's fallbackcommand for a fallback change; None if it has none."""
        if not virtual.fallbackcommand:
            return None
        argv = command_argv(virtual.fallbackcommand, fallback_args(virtual, active))
        return self.submit(("fallback", virtual.name), "fallbackcommand", argv)

    async def _after(
        self, previous: asyncio.Task[HookResult] | None, name: str, argv: list[str]
    ) -> HookResult:
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(previous)
        return await run_hook(name, argv, limit=self._limit)

    async def drain(self, within: float | None = None) -> None:
        """Wait for every queued hook (at most `within` seconds), then cancel what is left."""
        pending = set(self._tasks)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=within)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)
