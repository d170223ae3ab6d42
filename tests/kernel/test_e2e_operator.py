"""End to end in the real kernel: `healthd ctl drain` waits for the real's connections.

The e2e topology (tests/kernel/e2e_helpers.py): a client namespace holds one idle TCP
connection per real through the VIP; a drained real keeps weight 0 for as long as the
kernel counts its connection active (IPVS_DEST_ATTR_ACTIVE_CONNS from the netlink dump),
is removed once the client closes it, and comes back with `ready`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.e2e_helpers import (
    VIP,
    Daemons,
    Healthd,
    Topology,
    build,
    config_text,
    dest_line,
    service_line,
    table_is,
    wait_for,
)

pytestmark = pytest.mark.kernel

# Opens N connections to HOST:PORT and keeps them idle while the file UNTIL exists.
HOLD = r"""
import os, socket, sys, time
host, port, n, until = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
conns = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
print("held", flush=True)
while os.path.exists(until):
    time.sleep(0.1)
for c in conns:
    c.close()
print("closed", flush=True)
"""


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = build(tmp_path_factory.mktemp("op-state"), prefix="op")
    yield topology
    topology.close()


def ctl(daemon: Healthd, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "healthd", "-c", str(daemon.config), "ctl", *args]
    return subprocess.run(argv, env=daemon.env(), capture_output=True, text=True, check=False)


def real_view(daemon: Healthd, endpoint: str) -> dict[str, object]:
    argv = [sys.executable, "-m", "healthd", "-c", str(daemon.config), "status", "--format", "json"]
    out = subprocess.run(argv, env=daemon.env(), capture_output=True, text=True, check=False)
    reals = json.loads(out.stdout)["virtuals"][0]["reals"]
    return next(r for r in reals if r["real"] == endpoint)


def test_drain_waits_for_the_kernel_s_active_connections(
    topo: Topology, workdir: Path, daemons: Daemons
) -> None:
    extra = f"state_file={workdir}/state.json\n"
    daemon = daemons.start(topo, extra + config_text(topo, workdir, quiescent=False))
    r1, r2, r3 = topo.reals
    everyone = sorted([service_line(), *(dest_line(s, 1) for s in topo.reals)])
    wait_for(table_is(topo, everyone), "every real up")
    until = workdir / "hold"
    until.write_text("")
    holder = topo.client.popen([sys.executable, "-c", HOLD, VIP, "80", "3", str(until)])
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"  # rr: one connection on each real
    try:
        done = ctl(daemon, "drain", f"{VIP}:80", r2.endpoint)
        assert done.returncode == 0, done.stderr
        drained = sorted([service_line(), dest_line(r1, 1), dest_line(r2, 0), dest_line(r3, 1)])
        wait_for(table_is(topo, drained), "r2 at weight 0")
        time.sleep(3)  # several of the drain's polls: the connection is still active
        assert sorted(topo.table()) == drained
        assert real_view(daemon, r2.endpoint)["draining"] is True
    finally:
        until.unlink()
    assert holder.stdout.readline().strip() == "closed"
    gone = sorted([service_line(), dest_line(r1, 1), dest_line(r3, 1)])
    wait_for(table_is(topo, gone), "r2 removed once its connection ended")
    assert real_view(daemon, r2.endpoint)["admin"] == "drained"
    assert ctl(daemon, "ready", f"{VIP}:80", r2.endpoint).returncode == 0
    wait_for(table_is(topo, everyone), "r2 back after ready")
