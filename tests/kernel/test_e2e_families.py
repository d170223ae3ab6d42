"""End to end in the real kernel: IPv6 and firewall-mark virtual services, and execute= instances.

The same world as tests/kernel/test_e2e_daemon.py (a director, a client and real HTTP servers in
their own namespaces, `healthd -c FILE` in the director on the real netlink driver), built once
in 2001:db8::/32 for a `virtual6=` NAT service, and once in IPv4; in both, a `virtual=MARK`
(`virtual6=MARK`) service balances the packets nftables marks in the director. Each test
starts its own healthd and leaves the table empty, the marks removed and every server healthy.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.kernel.e2e_helpers import (
    ALLOWANCE,
    DETECTION,
    IPV6,
    VIP,
    WAIT,
    Daemons,
    Healthd,
    Server,
    Topology,
    block_text,
    build,
    count,
    dest_line,
    global_text,
    mark_vip,
    service_line,
    table_is,
    take_out,
    unmark_vip,
    wait_for,
)

pytestmark = pytest.mark.kernel

MARK = 5
FWM = f"-f {MARK}"  # the firewall-mark service, as `ipvsadm -Sn` names it
FWM6 = ("virtual6", "real6", f"{FWM} -6")  # the directives and ipvsadm's name for an IPv6 mark
VIP6 = f"-t [{IPV6.vip}]:80"
CHILD_PORT = 8080  # the execute= instance's virtual: VIP:8080


@pytest.fixture(scope="module")
def topo4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = build(tmp_path_factory.mktemp("e2e-state4"))
    yield topology
    topology.close()


@pytest.fixture(scope="module")
def topo6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = build(tmp_path_factory.mktemp("e2e-state6"), IPV6, prefix="e2e6")
    yield topology
    topology.close()


def table(service: str, reals: Sequence[Server], weights: tuple[int, ...]) -> list[str]:
    """Return the sorted `ipvsadm -Sn` lines of SERVICE (rr) with REALS at WEIGHTS."""
    lines = [dest_line(s, w, service=service) for s, w in zip(reals, weights, strict=True)]
    return sorted([service_line(service=service), *lines])


def test_ipv6_nat_virtual_follows_its_reals_health(
    topo6: Topology, daemons: Daemons, workdir: Path
) -> None:
    topo = topo6
    r2 = topo.reals[1]
    virtual = block_text(f"virtual6=[{topo.vip}]:80", topo.reals, real="real6", quiescent=True)
    daemon = daemons.start(topo, global_text(workdir) + virtual)
    wait_for(table_is(topo, table(VIP6, topo.reals, (1, 1, 1))), "every IPv6 real up")
    assert count(topo.requests(30)) == {"r1": 10, "r2": 10, "r3": 10}

    took = take_out(topo, daemon, r2, "status 500")
    assert took <= DETECTION + ALLOWANCE, f"r2 quiesced after {took:.1f} s"
    assert sorted(topo.table()) == table(VIP6, topo.reals, (1, 0, 1))
    assert count(topo.requests(100)) == {"r1": 50, "r3": 50}

    topo.heal_all()
    wait_for(table_is(topo, table(VIP6, topo.reals, (1, 1, 1))), "r2 back at weight 1")
    assert count(topo.requests(30)) == {"r1": 10, "r2": 10, "r3": 10}
    assert daemon.stop() == 0
    assert topo.table() == []  # cleanstop=yes (the default)


@pytest.mark.parametrize("family", [4, 6])
def test_firewall_mark_virtual_balances_marked_packets_over_healthy_reals(
    family: int, request: pytest.FixtureRequest, daemons: Daemons, workdir: Path
) -> None:
    topo: Topology = request.getfixturevalue(f"topo{family}")
    r1, r2, r3 = topo.reals
    # ldirectord: virtual=MARK / virtual6=MARK; ipvsadm marks an IPv6 one with -6
    virtual, real, service = ("virtual", "real", FWM) if family == 4 else FWM6
    daemons.watch(topo)  # the mark goes at the end even if healthd never starts
    mark_vip(topo, MARK)
    block = block_text(f"{virtual}={MARK}", topo.reals, protocol="fwm", quiescent=False, real=real)
    daemon = daemons.start(topo, global_text(workdir) + block)
    wait_for(table_is(topo, table(service, topo.reals, (1, 1, 1))), "every real up")
    assert count(topo.requests(30)) == {"r1": 10, "r2": 10, "r3": 10}

    took = take_out(topo, daemon, r3, "ok.html changed")
    assert took <= DETECTION + ALLOWANCE, f"r3 removed after {took:.1f} s"
    assert sorted(topo.table()) == table(service, [r1, r2], (1, 1))  # quiescent=no: removed
    assert count(topo.requests(60)) == {"r1": 30, "r2": 30}

    topo.heal_all()
    wait_for(table_is(topo, table(service, topo.reals, (1, 1, 1))), "r3 back")
    assert count(topo.requests(30)) == {"r1": 10, "r2": 10, "r3": 10}

    # the mark is what leads the VIP's packets to the service: without it, nothing listens
    unmark_vip(topo)
    answers = topo.requests(3)
    assert [a for a in answers if not a.startswith("error:")] == [], answers
    assert daemon.stop() == 0
    assert topo.table() == []


def _instance(topo: Topology, config: Path, verb: str, env: dict[str, str]) -> int:
    """Run `healthd CONFIG VERB` in the director, as the parent runs it; return its status."""
    argv = topo.director.argv([sys.executable, "-m", "healthd", str(config), verb])
    return subprocess.run(argv, env=env, capture_output=True, timeout=WAIT, check=False).returncode


def test_execute_instance_starts_reloads_and_stops_with_its_parent(
    topo4: Topology, daemons: Daemons, workdir: Path
) -> None:
    topo = topo4
    child_cf = workdir / "child.cf"
    child_cf.write_text(
        global_text(workdir, logfile="child.log")
        + block_text(f"virtual={VIP}:{CHILD_PORT}", topo.reals, quiescent=False)
    )
    child_service = f"-t {VIP}:{CHILD_PORT}"
    daemons.watch(topo)  # the mark goes at the end even if healthd never starts
    mark_vip(topo, MARK)
    parent_text = (
        global_text(workdir)
        + f"execute={child_cf}\n"
        + block_text(f"virtual={MARK}", topo.reals, protocol="fwm", quiescent=False)
    )
    daemon = daemons.start(topo, parent_text)
    child = Healthd(topo, child_cf, workdir, log_name="child.log")
    try:
        both = [*table(FWM, topo.reals, (1, 1, 1)), *table(child_service, topo.reals, (1, 1, 1))]
        wait_for(table_is(topo, both), "the parent's and the child's reals up")
        assert _instance(topo, child_cf, "status", daemon.env()) == 0  # running
        assert len(child.events("daemon.started")) == 1
        assert count(topo.requests(30, port=CHILD_PORT)) == {"r1": 10, "r2": 10, "r3": 10}
        assert count(topo.requests(30)) == {"r1": 10, "r2": 10, "r3": 10}

        # the parent's reload reloads the kept instance, which applies its own edited file
        child_cf.write_text(child_cf.read_text().replace("scheduler=rr", "scheduler=wrr"))
        daemon.signal(signal.SIGHUP)
        dests = [dest_line(server, 1, service=child_service) for server in topo.reals]
        wrr = [f"-A {child_service} -s wrr", *dests]
        wait_for(table_is(topo, [*table(FWM, topo.reals, (1, 1, 1)), *wrr]), "the child reloaded")
        assert len(child.events("daemon.started")) == 1  # reloaded, not restarted

        assert daemon.stop() == 0
        assert topo.table() == []  # the child's cleanstop too: it stopped first
        assert _instance(topo, child_cf, "status", daemon.env()) == 3  # stopped
        hooks = [e["argv"] for e in daemon.events("hook.ran") if e.get("hook") == "execute"]
        call = [sys.executable, "-m", "healthd", str(child_cf)]
        assert hooks == [[*call, "start"], [*call, "reload"], [*call, "stop"]]
        assert len(child.events("daemon.stopped")) == 1
    finally:
        _instance(topo, child_cf, "stop", daemon.env())
        print(f"--- execute= instance output:\n{child.output()}")
