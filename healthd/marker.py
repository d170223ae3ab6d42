"""ldirectord's marker: the word "ldirectord" in the daemon's /proc/PID/cmdline.

ldirectord's own status/stop and its OCF agent take a pid for the running instance only if
/proc/PID/cmdline matches /ldirectord/. healthd shows the command line it was started with,
plus the inert interpreter option `-X ldirectord-compatible` after the interpreter's path.

It writes that title over its own argument strings, as setproctitle(3) does: the kernel then
reads /proc/PID/cmdline up to the first NUL from the start of the arguments, on into the
environment strings, which are first copied elsewhere so `environ` (what children inherit)
stays intact. The title is read back; where it cannot be written (no /proc, too little room,
no libc) healthd re-execs itself with the option instead, as it always did before: then the
start-up pays for two interpreters instead of one. Until a title is needed this imports
nothing beyond os, sys and contextlib, which every interpreter has loaded.
"""

from __future__ import annotations

import contextlib
import os
import sys

MARKER = "ldirectord"  # ldirectord: the liveness test matches /ldirectord/ in the cmdline
COMPAT_FLAG = ("-X", "ldirectord-compatible")  # an inert interpreter option carrying MARKER
_PAGE = 4096  # the kernel reads a rewritten title from one page
_kept: list[object] = []  # the copied environment strings, alive as long as the process


def own_cmdline() -> bytes | None:
    """Return this process's /proc/self/cmdline, or None without /proc."""
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def title() -> list[str]:
    """Return the command line the daemon shows: the interpreter's, with COMPAT_FLAG added."""
    argv = list(sys.orig_argv)
    return [argv[0], *COMPAT_FLAG, *argv[1:]]


def ensure() -> None:
    """Carry MARKER in the command line: retitle in place, else re-exec with COMPAT_FLAG."""
    own = own_cmdline()
    # no /proc, or already marked (or re-executed): never loop
    if own is None or MARKER.encode() in own or COMPAT_FLAG[1] in sys._xoptions:
        return
    if not retitle(title()):
        os.execv(sys.executable, title())


def _areas() -> tuple[int, int, int, int] | None:
    """Return (arg_start, arg_end, env_start, env_end) from /proc/self/stat (Linux ≥ 3.5)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        start, end, env_start, env_end = (int(x) for x in fields[45:49])
    except (OSError, ValueError):
        return None
    return start, end, env_start, env_end


def retitle(words: list[str]) -> bool:
    """Show `words` as this process's command line; return whether /proc now says so."""
    text = " ".join(words).encode(errors="surrogateescape")
    areas = _areas()
    if areas is None or b"\0" in text:
        return False
    start, end, env_start, env_end = areas
    # the title must reach past the arguments (that is how the kernel knows) and fit
    if env_start != end or not end - start <= len(text) < min(env_end - start, _PAGE):
        return False
    try:
        _overwrite(text, start, env_start, env_end)
    except (OSError, AttributeError, ValueError):  # no libc or no `environ` symbol in it
        return False
    return own_cmdline() in (text, text + b"\0")


def _overwrite(text: bytes, start: int, env_start: int, env_end: int) -> None:
    """Move the environment strings to the heap, then write `text` over the arguments."""
    import ctypes

    libc = ctypes.CDLL(None)
    environ = ctypes.POINTER(ctypes.c_void_p).in_dll(libc, "environ")
    i = 0
    while (address := environ[i]) is not None:
        if env_start <= address < env_end:
            copy = ctypes.create_string_buffer(ctypes.string_at(address))
            _kept.append(copy)
            environ[i] = ctypes.addressof(copy)
        i += 1
    for name in ("program_invocation_name", "program_invocation_short_name"):
        with contextlib.suppress(ValueError):  # not glibc or musl: no such symbol
            pointer = ctypes.c_void_p.in_dll(libc, name)
            if pointer.value is not None and start <= pointer.value < env_end:
                copy = ctypes.create_string_buffer(ctypes.string_at(pointer.value))
                _kept.append(copy)
                pointer.value = ctypes.addressof(copy)
    ctypes.memset(start, 0, env_end - start)
    ctypes.memmove(start, text, len(text))
