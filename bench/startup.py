"""Benchmark: how long `healthd -c FILE` takes from exec to a programmed table (not a test).

Starts a small HTTP server on loopback (one listening socket per real, 127.0.0.11 and up,
port 8080), writes a configuration of one virtual with those reals (service=http,
checkinterval 1 s), execs `healthd -c FILE` and polls until the table holds every real at
its weight; the time from just before exec to that poll is one sample. It also times
`healthd -c FILE configtest` the same way (exec to exit).

Natively it runs the daemon on the in-memory table (HEALTHD_DRIVER=fake) and reads it through
the daemon's control socket; as root where IPVS works (the test VM) it runs on the kernel in a
network namespace of its own and reads the table over netlink:

    .venv/bin/python bench/startup.py                       # natively, in-memory table
    .venv/bin/python -m tests.kernel.vm run -- .venv/bin/python bench/startup.py --kernel

`--reals`, `--runs` pick the size and the number of samples (medians are printed).
`--checkout DIR` (repeatable) runs the healthd of another source tree (an unpacked
`git archive` of an older commit, say) as well, alternating with this one sample by sample,
so a before/after comparison sees the same machine load.

`--bytecode cached` (the default) compiles each tree's healthd and checks first, as an
installed package has them; `--bytecode none` removes their __pycache__ and runs with
PYTHONDONTWRITEBYTECODE=1, so every start compiles healthd's own source again (what a
source checkout run in an environment with that variable set does; the standard library
and site-packages keep their bytecode either way).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

CLONE_NEWNET = 0x40000000
PORT = 8080
FIRST_REAL = IPv4Address("127.0.0.11")
VIP = "192.0.2.10:80"
DEADLINE = 180.0  # seconds one sample may take before the run fails
POLL = 0.1  # seconds between two looks at the table


def config_text(reals: int, logfile: Path | None = None) -> str:
    """Return the benchmark's configuration: one virtual, `reals` HTTP reals on loopback."""
    lines = ["checktimeout=3", "checkinterval=1", "quiescent=no", f"virtual={VIP}"]
    if logfile is not None:
        lines.insert(0, f'logfile="{logfile}"')
    lines += [f"    real={FIRST_REAL + i}:{PORT} masq" for i in range(reals)]
    lines += ["    service=http", '    request="ok.html"', '    receive="ok"', "    scheduler=wrr"]
    return "\n".join(lines) + "\n"


def serve_http(reals: int) -> None:
    """Answer `ok` to every request on each real's address, in a daemon thread."""
    ready = threading.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def main() -> None:
        for i in range(reals):
            await asyncio.start_server(handle, str(FIRST_REAL + i), PORT)
        ready.set()
        await asyncio.Event().wait()

    threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
    if not ready.wait(30):
        raise SystemExit("startup: the HTTP server did not start")


def enter_netns(name: str) -> None:
    """Create network namespace `name`, move this process into it and bring loopback up."""
    subprocess.run(["ip", "netns", "add", name], check=True)
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def kernel_reader() -> Callable[[], int]:
    """Return a function that counts the dests with weight > 0 in the kernel's table.

    One loop and one netlink socket for the whole run: in the emulated VM a fresh loop and
    socket per poll would take CPU from the daemon being measured.
    """
    from healthd.ipvs.netlink import NetlinkDriver

    runner = asyncio.Runner()
    driver = NetlinkDriver()

    async def count() -> int:
        table = await driver.dump()
        return sum(1 for e in table.services.values() for d in e.dests.values() if d.weight > 0)

    return lambda: runner.run(count())


def control_reader(socket: str) -> Callable[[], int]:
    """Return a function that counts the reals with kernel weight > 0 in the daemon's view."""
    from healthd import control

    def count() -> int:
        try:
            view = control.query(socket, timeout=1.0)
        except control.ControlError:
            return 0
        reals = [r for v in view.get("virtuals", []) for r in v["reals"]]  # type: ignore[attr-defined]
        return sum(1 for r in reals if (r.get("kernel_weight") or 0) > 0)

    return count


@dataclass(frozen=True)
class Tree:
    """One healthd source tree to run: its directory (the working directory and PYTHONPATH)."""

    path: Path
    runs: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    tests: list[float] = field(default_factory=list)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "PYTHONPATH": str(self.path)}


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) process `pid` has used so far, exec'd images too."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sample(
    argv: list[str], tree: Tree, env: dict[str, str], count: Callable[[], int], want: int
) -> tuple[float, float]:
    """Exec the daemon, poll until `want` dests are up; return the wall and CPU seconds."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=tree.path,
        env=tree.env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while count() < want:
            if proc.poll() is not None:
                raise SystemExit(f"startup: healthd exited with {proc.returncode}")
            if time.monotonic() - start > DEADLINE:
                raise SystemExit(f"startup: table not programmed within {DEADLINE:.0f} s")
            time.sleep(POLL)
        return time.monotonic() - start, cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def configtest(argv: list[str], tree: Tree, env: dict[str, str]) -> float:
    """Return the seconds from exec to exit of `healthd -c FILE configtest`."""
    start = time.monotonic()
    subprocess.run(
        [*argv, "configtest"],
        cwd=tree.path,
        env=tree.env(env),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - start


def trace(
    where: Path, tree: Tree, env: dict[str, str], count: Callable[[], int], want: int
) -> None:
    """Run one sample under -X importtime with the daemon's log in `where` (times relative)."""
    where.mkdir(parents=True, exist_ok=True)
    cf = where / "startup.cf"
    cf.write_text(config_text(want, where / "healthd.log"))
    argv = [sys.executable, "-X", "importtime", "-m", "healthd", "-c", str(cf)]
    started = time.time()
    with open(where / "importtime.txt", "w") as err:
        proc = subprocess.Popen(argv, cwd=tree.path, env=tree.env(env), stderr=err)
        while count() < want and time.time() - started < DEADLINE:
            time.sleep(POLL)
        took = time.time() - started
        proc.terminate()
        proc.wait(30)
    (where / "summary.txt").write_text(
        f"tree {tree.path}\nexec at {started:.3f}\ntook {took:.2f}\n"
    )


def prepare_bytecode(trees: list[Tree], mode: str, env: dict[str, str]) -> None:
    """Compile each tree's packages (`cached`) or remove their bytecode (`none`); set env."""
    packages = [str(t.path / p) for t in trees for p in ("healthd", "checks")]
    if mode == "none":
        for package in packages:
            for cache in Path(package).rglob("__pycache__"):
                shutil.rmtree(cache)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], env=env)
    if done.returncode != 0:  # a read-only tree (the VM mounts the host's / read-only)
        print("startup: some bytecode could not be written; compile those trees beforehand")


def _figures(values: list[float]) -> str:
    runs = ", ".join(f"{v:.2f}" for v in values)
    return f"median {statistics.median(values):.2f} s (runs: {runs})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reals", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--kernel", action="store_true", help="real IPVS (root, in the VM)")
    parser.add_argument("--checkout", action="append", type=Path, default=[])
    parser.add_argument("--bytecode", choices=("cached", "none"), default="cached")
    parser.add_argument(
        "--trace",
        type=Path,
        help="directory: also run each tree once under -X importtime, logging to a file there",
    )
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1]
    trees = [Tree(here), *(Tree(p.resolve()) for p in args.checkout)]
    work = Path(tempfile.mkdtemp(prefix="healthd-startup-"))
    if args.kernel:
        enter_netns(f"healthd-startup-{os.getpid()}")
    serve_http(args.reals)
    cf = work / "startup.cf"
    cf.write_text(config_text(args.reals))
    env = {**os.environ, "HEALTHD_RUNDIR": str(work)}
    prepare_bytecode(trees, args.bytecode, env)
    if args.kernel:
        count = kernel_reader()
    else:
        env["HEALTHD_DRIVER"] = "fake"
        count = control_reader(str(work / "startup.cf.sock"))
    argv = [sys.executable, "-m", "healthd", "-c", str(cf)]
    for _ in range(args.runs):
        for tree in trees:
            wall, cpu = sample(argv, tree, env, count, args.reals)
            tree.runs.append(wall)
            tree.cpu.append(cpu)
            tree.tests.append(configtest(argv, tree, env))
    if args.trace is not None:
        for n, tree in enumerate(trees):
            trace(args.trace / str(n), tree, env, count, args.reals)
    where = "kernel IPVS" if args.kernel else "in-memory table"
    print(
        f"{platform.node()} {platform.release()} Python {platform.python_version()}, {where},"
        f" bytecode {args.bytecode}"
    )
    for tree in trees:
        print(f"{tree.path}:")
        print(f"  exec -> {args.reals} reals programmed: {_figures(tree.runs)}")
        print(f"  daemon CPU until then: {_figures(tree.cpu)}")
        print(f"  exec -> configtest exit: {_figures(tree.tests)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
