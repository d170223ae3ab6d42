"""Debian kernel and initramfs for the test VM, cached between runs.

Downloads the kernel package that ``linux-image-amd64`` depends on, unpacks it once under
``~/.cache/healthd/kernel-VERSION/`` and builds a small busybox initramfs next to it. The
initramfs is rebuilt whenever the guest init script (or anything else in it) changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

GUEST_INIT = Path(__file__).with_name("guest_init.sh")
BUSYBOX = Path("/bin/busybox")
META_PACKAGE = "linux-image-amd64"
# The 9p modules the initramfs needs to mount the host's filesystems; their dependencies
# (virtio_ring, virtio, virtio_pci_*_dev, netfs, fscache) are added from modules.dep.
INITRAMFS_MODULES = ("virtio_pci", "9pnet_virtio", "9p")
# Bump when the layout of the initramfs changes in a way the hash below does not see.
INITRAMFS_FORMAT = "1"


class VMError(Exception):
    """The test VM, its kernel or its initramfs could not be prepared or run."""


@dataclass(frozen=True, slots=True)
class Kernel:
    """An unpacked Debian kernel: its image and a depmod-ed module tree."""

    version: str
    root: Path  # holds boot/vmlinuz-VERSION and lib/modules/VERSION

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.version


def cache_dir() -> Path:
    """Return the directory that holds kernels and initramfs images between runs.

    Always absolute: the guest mounts the kernel's modules from the same path.
    """
    explicit = os.environ.get("HEALTHD_VM_CACHE")
    if explicit:
        return Path(explicit).absolute()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).absolute() / "healthd"


def _run(argv: Sequence[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise VMError(f"{argv[0]} not found: run scripts/bootstrap (needs root)") from exc
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise VMError(f"{' '.join(argv)} failed: {lines[-1] if lines else proc.returncode}")
    return proc.stdout


def parse_depends(apt_cache_output: str) -> str | None:
    """Return the kernel version from ``apt-cache depends linux-image-amd64`` output."""
    match = re.search(r"Depends:\s*linux-image-(\S+)", apt_cache_output)
    return match.group(1) if match else None


def kernel_version() -> str:
    """Return the version of Debian's current amd64 kernel (HEALTHD_VM_KERNEL overrides)."""
    explicit = os.environ.get("HEALTHD_VM_KERNEL")
    if explicit:
        return explicit
    try:
        version = parse_depends(_run(["apt-cache", "depends", META_PACKAGE]))
    except VMError:
        version = None
    if version is None:
        # A fresh machine has no package lists yet.
        _run(["apt-get", "update", "-qq"])
        version = parse_depends(_run(["apt-cache", "depends", META_PACKAGE]))
    if version is None:
        raise VMError(f"apt-cache knows no kernel behind {META_PACKAGE}")
    return version


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock, so concurrent test runs build the cache only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_kernel(version: str) -> Kernel:
    """Return the unpacked kernel VERSION, downloading and unpacking it when missing."""
    final = cache_dir() / f"kernel-{version}"
    kernel = Kernel(version, final / "root")
    with _locked(cache_dir() / f"kernel-{version}.lock"):
        if (final / "complete").exists():
            return kernel
        work = cache_dir() / f"kernel-{version}.partial"
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            _unpack(version, work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        work.rename(final)
    return kernel


def _unpack(version: str, work: Path) -> None:
    _download(f"linux-image-{version}", work)
    (deb,) = work.glob("*.deb")
    _run(["dpkg-deb", "-x", str(deb), str(work / "root")])
    deb.unlink()
    _run(["depmod", "-b", str(work / "root"), version])
    (work / "complete").write_text(version + "\n")


def _download(package: str, into: Path) -> None:
    try:
        _run(["apt-get", "download", package], cwd=into)
    except VMError:
        _run(["apt-get", "update", "-qq"])
        _run(["apt-get", "download", package], cwd=into)


def module_deps(modules: Path) -> dict[str, list[str]]:
    """Map module name to the names it depends on, from modules.dep."""
    deps: dict[str, list[str]] = {}
    for line in (modules / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        deps[_mod_name(target)] = [_mod_name(dep) for dep in rest.split()]
    return deps


def _mod_name(path: str) -> str:
    return Path(path).name.split(".ko")[0]


def load_order(deps: dict[str, list[str]], wanted: Sequence[str]) -> list[str]:
    """Return WANTED plus their dependencies, each after everything it depends on."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name not in deps:
            raise VMError(f"kernel module {name} not found in modules.dep")
        for dep in deps[name]:
            visit(dep)
        order.append(name)

    for name in wanted:
        visit(name)
    return order


def _module_files(kernel: Kernel) -> list[tuple[str, Path]]:
    paths = {_mod_name(p.name): p for p in kernel.modules.rglob("*.ko")}
    order = load_order(module_deps(kernel.modules), INITRAMFS_MODULES)
    return [(name, paths[name]) for name in order]


class Newc:
    """Writer of the cpio "newc" format the kernel unpacks as its initramfs."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._ino = 0

    def _entry(
        self, name: str, mode: int, body: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, 1, 0, len(body), 0, 0, *rdev, len(encoded), 0)
        self.data += b"070701" + b"".join(b"%08X" % f for f in fields) + encoded
        self.data += b"\0" * (-len(self.data) % 4) + body
        self.data += b"\0" * (-len(self.data) % 4)

    def directory(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, body: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, body)

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return bytes(self.data)


def build_initramfs(kernel: Kernel) -> bytes:
    """Return the initramfs: busybox, the 9p modules in load order and the guest init."""
    if not BUSYBOX.exists():
        raise VMError(f"{BUSYBOX} not found: install busybox-static (scripts/bootstrap does)")
    archive = Newc()
    for name in ("bin", "dev", "proc", "sys", "newroot", "results", "lib", "lib/modules"):
        archive.directory(name)
    archive.chardev("dev/console", 5, 1)
    archive.chardev("dev/null", 1, 3)
    archive.file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
    archive.file("init", GUEST_INIT.read_bytes(), 0o755)
    modules = _module_files(kernel)
    for name, path in modules:
        archive.file(f"lib/modules/{name}.ko", path.read_bytes())
    archive.file("lib/modules/order", "".join(f"{name}\n" for name, _ in modules).encode())
    return archive.finish()


def ensure_initramfs(kernel: Kernel) -> Path:
    """Return the cached initramfs for KERNEL, rebuilding it when its content changed."""
    blob = build_initramfs(kernel)
    digest = hashlib.sha256(INITRAMFS_FORMAT.encode() + blob).hexdigest()[:16]
    path = kernel.root.parent / f"initramfs-{digest}.cpio"
    with _locked(kernel.root.parent / "initramfs.lock"):
        if not path.exists():
            for old in kernel.root.parent.glob("initramfs-*.cpio"):
                old.unlink()
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(blob)
            tmp.rename(path)
    return path
