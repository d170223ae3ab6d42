"""Faults in the real kernel: the driver's netlink socket dies underneath the daemon.

healthd runs in the director of the e2e topology (tests/kernel/e2e_helpers.py). The test
finds the daemon's generic-netlink socket (its inode in /proc/net/netlink, the director's
namespace, against the daemon's /proc/PID/fd) and, with gdb attached to the daemon, puts a
plain UDP socket on that descriptor number (dup2): the kernel's netlink socket is gone, and
the daemon's next request on it fails. The daemon must log the failure, open a new netlink
socket by itself, and repair the table (a real deleted by hand meanwhile comes back),
without a restart and without taking any real out.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.e2e_helpers import (
    VIP,
    Daemons,
    Topology,
    build,
    config_text,
    dest_line,
    service_line,
    table_is,
    wait_for,
)

pytestmark = pytest.mark.kernel

NETLINK_GENERIC = "16"


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = build(tmp_path_factory.mktemp("e2e-state"), prefix="flt")
    yield topology
    topology.close()


def generic_netlink_fds(topo: Topology, pid: int) -> dict[int, str]:
    """Return the daemon's generic-netlink sockets: descriptor -> socket inode."""
    listing = topo.director.run(["cat", "/proc/net/netlink"]).stdout.splitlines()[1:]
    inodes = {cols[-1] for cols in map(str.split, listing) if cols[1] == NETLINK_GENERIC}
    found = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            found[int(fd)] = link[8:-1]
    return found


def kill_socket(pid: int, fd: int) -> None:
    """Put a fresh UDP socket on the daemon's descriptor fd: the netlink socket is closed."""
    script = [
        "set $udp = (int)socket(2, 2, 0)",
        f"call (int)dup2($udp, {fd})",
        "call (int)close($udp)",
    ]
    argv = ["gdb", "-p", str(pid), "-batch", "-nx", "-iex", "set auto-load off"]
    for line in script:
        argv += ["-ex", line]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"= {fd}" in done.stdout, done.stdout  # dup2 returned the descriptor


def test_the_daemon_reconnects_when_its_netlink_socket_dies(
    topo: Topology, workdir: Path, daemons: Daemons
) -> None:
    daemon = daemons.start(topo, config_text(topo, workdir))
    assert daemon.proc is not None
    pid = daemon.proc.pid
    full = sorted([service_line("rr"), *(dest_line(s, 1) for s in topo.reals)])
    wait_for(table_is(topo, full), "every real up")
    [(fd, inode)] = generic_netlink_fds(topo, pid).items()

    kill_socket(pid, fd)
    assert generic_netlink_fds(topo, pid) == {}  # no netlink socket left in the daemon
    killed = time.time()
    r2 = topo.reals[1]
    topo.ipvsadm("-d", "-t", f"{VIP}:80", "-r", r2.endpoint)  # drift for it to repair

    wait_for(table_is(topo, full), "r2 restored through a new netlink socket")
    failed = daemon.events("ipvs.dump_failed") + daemon.events("ipvs.apply_failed")
    assert failed, daemon.output()  # the dead socket was noticed and logged
    [(new_fd, new_inode)] = generic_netlink_fds(topo, pid).items()
    assert new_inode != inode
    assert daemon.proc.poll() is None  # no restart
    assert daemon.events("real.down") == []  # healthd's own failure took no real out
    assert len(daemon.events("daemon.started")) == 1
    print(f"netlink fd {fd} (inode {inode}) killed; reconnected on fd {new_fd} "
          f"(inode {new_inode}) and repaired within {time.time() - killed:.1f} s")  # fmt: skip
    assert daemon.stop() == 0
