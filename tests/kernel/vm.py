"""Throwaway qemu VM with Debian's kernel, for the tests that need a real IPVS.

This machine's kernel has no IPVS, so the kernel suite boots Debian's own kernel under qemu
(TCG; no KVM). The guest sees the host's / read-only over 9p, with tmpfs on /tmp and /run, and
the checkout (with its .venv) writable at the same absolute path as on the host. ip_vs, every
IPVS scheduler, veth and dummy are loaded; HEALTHD_KERNEL=1 is set; the command runs as root
with the checkout as its working directory. Kernel and initramfs are cached under
~/.cache/healthd/ (HEALTHD_VM_CACHE overrides) and rebuilt when missing or changed.

Command line:

    .venv/bin/python -m tests.kernel.vm pytest [ARGS...]
        Boot the VM and run ``.venv/bin/python -m pytest ARGS`` inside it, streaming its output;
        exit with pytest's exit status.
    .venv/bin/python -m tests.kernel.vm run -- CMD [ARGS...]
        Boot the VM and run CMD inside it (benchmarks, ipvsadm, a shell one-liner).

The guest command also sees HEALTHD_VM=1, HEALTHD_VM_CHECKOUT (the checkout's path) and
HEALTHD_VM_MODULES (the kernel's module directory); plain ``modprobe`` works there.

Environment: HEALTHD_VM_TIMEOUT (whole run, seconds, default 1500), HEALTHD_VM_BOOT_TIMEOUT
(default 120), HEALTHD_VM_KERNEL (a Debian kernel version instead of linux-image-amd64's),
HEALTHD_VM_CPU (qemu's CPU model, default max).
The serial console is logged under ~/.cache/healthd/logs/; a boot failure or timeout raises
VMError carrying the tail of that log.

In pytest runs, tests/kernel/plugin.py uses this module: tests marked ``kernel`` run here in one
VM boot and report as the host's own. HEALTHD_SKIP_KERNEL=1 skips them (loudly) on a machine
without qemu; with CI=true that is refused.
"""

from __future__ import annotations

import os
import selectors
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tests.kernel.image import VMError, cache_dir, ensure_initramfs, ensure_kernel, kernel_version

CHECKOUT = Path(__file__).resolve().parents[2]
GUEST_RESULTS = "/run/healthd/results"  # where the results share is mounted in the guest
READY = b"healthd-vm: ready"
DONE = b"healthd-vm: done"  # printed after the command; what follows is shutdown noise
QEMU = "qemu-system-x86_64"
# Paths the guest covers with tmpfs: nothing the guest must run may live only there.
HIDDEN = (Path("/tmp"), Path("/run"))
# Host variables the guest command inherits (the rest of its environment is fixed).
PASSED_ENV = ("CI", "HYPOTHESIS_PROFILE", "TERM", "COLUMNS", "PYTHONHASHSEED")
LOG_KEEP = 20
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

__all__ = [
    "CHECKOUT",
    "GUEST_RESULTS",
    "VMError",
    "VMRun",
    "guest_python",
    "new_console_log",
    "run",
    "tail",
]


@dataclass(frozen=True, slots=True)
class VMRun:
    """What one VM run did: the guest command's exit status and how long each part took."""

    returncode: int
    boot_seconds: float
    total_seconds: float
    console_log: Path


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError as exc:
        raise VMError(f"{name}={value!r} is not a number of seconds") from exc


def guest_python(checkout: Path = CHECKOUT) -> str:
    """Return the python the guest runs: the checkout's virtualenv, else this interpreter.

    Raise VMError when the guest would not see it: the guest's tmpfs hides /tmp and /run,
    except for the checkout, which it mounts at its own path wherever that is.
    """
    venv = checkout / ".venv"
    python = venv / "bin" / "python"
    chosen = python if python.exists() else Path(sys.executable)
    # The virtualenv itself (its site-packages) may be a link to somewhere else.
    for path in (venv, chosen) if chosen == python else (chosen,):
        real = path.resolve()
        hidden = any(real.is_relative_to(h) for h in HIDDEN)
        if hidden and not real.is_relative_to(checkout.resolve()):
            raise VMError(f"{path} resolves to {real}, which the VM's tmpfs hides")
    return str(chosen)


def tail(path: Path, lines: int = 40) -> str:
    """Return the last LINES lines of a console log."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no console log)"
    return "\n".join(text.splitlines()[-lines:]) or "(the console is empty)"


def new_console_log() -> Path:
    """Return a fresh path for a console log (the oldest logs are pruned)."""
    logs = cache_dir() / "logs"
    try:
        logs.mkdir(parents=True, exist_ok=True)
        for old in sorted(logs.glob("console-*.log"))[:-LOG_KEEP]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        raise VMError(f"cannot keep console logs in {logs}: {exc}") from exc
    return logs / f"console-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def _qemu_argv(kernel_image: Path, initrd: Path, results: Path, checkout: Path) -> list[str]:
    def share(tag: str, path: Path, readonly: bool) -> list[str]:
        escaped = str(path).replace(",", ",,")  # qemu's option syntax doubles commas
        opts = f"local,path={escaped},mount_tag={tag},security_model=none,multidevs=remap"
        return ["-virtfs", opts + (",readonly=on" if readonly else "")]

    return [
        QEMU,
        *("-accel", "tcg", "-cpu", os.environ.get("HEALTHD_VM_CPU", "max")),
        *("-m", "2048", "-smp", "2"),
        *("-nodefaults", "-display", "none", "-no-reboot", "-nic", "none"),
        *("-serial", "stdio", "-monitor", "none"),
        *("-kernel", str(kernel_image), "-initrd", str(initrd)),
        *("-append", "console=ttyS0 quiet loglevel=4 panic=-1"),
        *share("hostroot", Path("/"), readonly=True),
        *share("results", results, readonly=False),
        *share("checkout", checkout, readonly=False),
    ]


def _write_guest_files(
    results: Path, argv: Sequence[str], env: Mapping[str, str], checkout: Path, root: Path
) -> None:
    version = root.parent.name.removeprefix("kernel-")
    settings = {
        "HEALTHD_VM_CHECKOUT": str(checkout),
        "HEALTHD_VM_KERNEL_ROOT": str(root),
        "HEALTHD_VM_KERNEL_VERSION": version,
    }
    (results / "vm.env").write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in settings.items()))
    full_env = {
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PATH": f"{checkout}/.venv/bin:{SYSTEM_PATH}",
        "HEALTHD_KERNEL": "1",
        **{k: os.environ[k] for k in PASSED_ENV if k in os.environ},
        **env,
    }
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in full_env.items())
    (results / "cmd.sh").write_text(f"{exports}exec {shlex.join(argv)}\n")


class _Console:
    """Copies qemu's serial output to the log and, once the guest is ready, to a stream."""

    def __init__(self, log: TextIO, stream: TextIO | None) -> None:
        self.log = log
        self.stream = stream
        self.ready_at: float | None = None
        self._pending = b""
        self._done = False

    def feed(self, chunk: bytes, now: float) -> None:
        data = chunk.replace(b"\r\n", b"\n")
        self.log.write(data.decode(errors="replace"))
        self.log.flush()
        if self.ready_at is None:
            self._pending += data
            index = self._pending.find(READY)
            if index < 0:
                self._pending = self._pending[-len(READY) :]
                return
            self.ready_at = now
            rest = self._pending[index + len(READY) :]
            data = rest[1:] if rest.startswith(b"\n") else rest
        if self._done:
            return
        if DONE in data:
            data = data[: data.find(DONE)]
            self._done = True
        if self.stream is not None and data:
            self.stream.write(data.decode(errors="replace"))
            self.stream.flush()


def _pump(proc: subprocess.Popen[bytes], console: _Console, start: float) -> None:
    """Read the console until qemu exits; kill it when boot or the whole run takes too long."""
    boot_timeout = _env_seconds("HEALTHD_VM_BOOT_TIMEOUT", 120)
    timeout = _env_seconds("HEALTHD_VM_TIMEOUT", 1500)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            limit, what = start + timeout, f"the VM run took longer than {timeout:.0f} s"
            if console.ready_at is None and start + boot_timeout < limit:
                limit, what = (
                    start + boot_timeout,
                    f"the VM did not boot within {boot_timeout:.0f} s",
                )
            if now >= limit:
                proc.kill()
                proc.wait()
                raise VMError(what)
            if sel.select(timeout=min(limit - now, 1.0)):
                chunk = os.read(fd, 65536)
                if not chunk:
                    proc.wait()
                    return
                console.feed(chunk, time.monotonic())


def _check_tools() -> None:
    if shutil.which(QEMU) is None:
        raise VMError(f"{QEMU} not found: install qemu-system-x86 (scripts/bootstrap does)")


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
    results: Path | None = None,
    checkout: Path = CHECKOUT,
    console_log: Path | None = None,
) -> VMRun:
    """Boot the VM, run ARGV in it and return its exit status; raise VMError if it cannot.

    RESULTS is a host directory the guest sees, writable, at GUEST_RESULTS (a temporary one
    when None). STREAM receives the guest's console output once it has booted; the whole
    console goes to CONSOLE_LOG (a new file under the cache when None).
    """
    _check_tools()
    try:
        kernel = ensure_kernel(kernel_version())
        initrd = ensure_initramfs(kernel)
    except OSError as exc:  # a full disk, an unwritable cache
        raise VMError(f"cannot prepare the VM's kernel in {cache_dir()}: {exc}") from exc
    log_path = console_log or new_console_log()
    with tempfile.TemporaryDirectory(prefix="healthd-vm-") as scratch:
        shared = results or Path(scratch)
        (shared / "rc").unlink(missing_ok=True)
        _write_guest_files(shared, argv, env or {}, checkout, kernel.root)
        qemu = _qemu_argv(kernel.vmlinuz, initrd, shared, checkout)
        start = time.monotonic()
        with log_path.open("w") as log:
            console = _Console(log, stream)
            proc = subprocess.Popen(
                qemu, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            try:
                _pump(proc, console, start)
            except VMError as exc:
                raise VMError(f"{exc}; console log {log_path}:\n{tail(log_path)}") from None
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                assert proc.stdout is not None
                proc.stdout.close()
        rc_file = shared / "rc"
        if not rc_file.exists():
            raise VMError(
                f"the VM stopped before the command finished (qemu exit status {proc.returncode});"
                f" console log {log_path}:\n{tail(log_path)}"
            )
        returncode = int(rc_file.read_text().strip())
    total = time.monotonic() - start
    boot = (console.ready_at or start) - start
    return VMRun(returncode, boot, total, log_path)


def _usage() -> int:
    print(__doc__.split("Command line:")[1].split("Environment:")[0].strip("\n"), file=sys.stderr)
    return 2


def main(args: Sequence[str]) -> int:
    """Run the command line described in the module docstring; return the exit status."""
    if not args or args[0] not in ("pytest", "run"):
        return _usage()
    if args[0] == "pytest":
        argv = [guest_python(), "-m", "pytest", *args[1:]]
    else:
        rest = list(args[1:])
        argv = rest[1:] if rest[:1] == ["--"] else rest
        if not argv:
            return _usage()
    try:
        log = new_console_log()
        print(f"healthd-vm: booting (console log {log})", file=sys.stderr)
        result = run(argv, stream=sys.stdout, console_log=log)
    except VMError as exc:
        print(f"healthd-vm: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"healthd-vm: exit status {result.returncode}; booted in {result.boot_seconds:.1f} s,"
        f" total {result.total_seconds:.1f} s",
        file=sys.stderr,
    )
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
