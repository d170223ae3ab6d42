"""End to end in the real kernel: healthd keeps a NAT virtual service true to its reals' health.

Inside the test VM (tests/kernel/vm.py): real HTTP servers in their own namespaces behind a
director, a client namespace sending requests to the VIP, and `healthd -c FILE` in the
director on the real netlink driver (see tests/kernel/e2e_helpers.py for the topology). Each
test starts its own healthd and leaves the table empty and every server healthy.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.kernel.e2e_helpers import (
    ALLOWANCE,
    DETECTION,
    RESYNC_INTERVAL,
    VIP,
    Daemons,
    Healthd,
    Topology,
    build,
    config_text,
    count,
    dest_line,
    service_line,
    stamp,
    table_is,
    take_out,
    wait_for,
)

pytestmark = pytest.mark.kernel

Start = Callable[..., Healthd]


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = build(tmp_path_factory.mktemp("e2e-state"))
    yield topology
    topology.close()


@pytest.fixture
def start(topo: Topology, workdir: Path, daemons: Daemons) -> Start:
    """Write a config with the given settings, start healthd on it and wait until it is up."""
    daemons.watch(topo)  # the table is emptied even when the test fails before healthd starts

    def start(**settings: object) -> Healthd:
        text = config_text(topo, workdir, **settings)  # type: ignore[arg-type]
        return daemons.start(topo, text)

    return start


def full_table(topo: Topology, weights: tuple[int, ...], scheduler: str = "rr") -> list[str]:
    """Return the sorted `ipvsadm -Sn` lines of the VIP with r1..r3 at WEIGHTS."""
    lines = [dest_line(server, w) for server, w in zip(topo.reals, weights, strict=True)]
    return sorted([service_line(scheduler), *lines])


def test_table_matches_config_and_drift_is_repaired(topo: Topology, start: Start) -> None:
    daemon = start(weights=(1, 2, 3), scheduler="wrr")
    # healthd starts the reals at weight 0 and gives each its weight after a good check
    wait_for(table_is(topo, full_table(topo, (1, 2, 3), "wrr")), "every real up")
    # ten whole rounds of wrr 1:2:3, whatever real the round starts at
    assert count(topo.requests(60)) == {"r1": 10, "r2": 20, "r3": 30}

    r2 = topo.reals[1]
    seen = len(daemon.events("ipvs.op_applied"))
    topo.ipvsadm("-d", "-t", f"{VIP}:80", "-r", r2.endpoint)
    deleted = time.time()  # (ipvsadm succeeded: topo.ipvsadm checks its exit status)
    wait_for(table_is(topo, full_table(topo, (1, 2, 3), "wrr")), "r2 restored")
    assert len(daemon.events("ipvs.drift_detected")) == 1
    [restored] = daemon.events("ipvs.op_applied")[seen:]
    assert restored["op"] == f"add-dest tcp/{VIP}:80 {r2.endpoint} masq w=2"
    took = stamp(restored) - deleted
    assert took <= RESYNC_INTERVAL + ALLOWANCE, f"restored after {took:.1f} s"


def test_failed_real_gets_no_traffic_until_it_recovers(topo: Topology, start: Start) -> None:
    daemon = start(quiescent=True)
    r2 = topo.reals[1]
    wait_for(table_is(topo, full_table(topo, (1, 1, 1))), "every real up")

    took = take_out(topo, daemon, r2, "status 500")
    assert took <= DETECTION + ALLOWANCE, f"r2 quiesced after {took:.1f} s"
    # quiescent=yes: weight 0, so r2's established connections drain
    assert sorted(topo.table()) == full_table(topo, (1, 0, 1))
    assert count(topo.requests(100)) == {"r1": 50, "r3": 50}

    topo.heal_all()
    wait_for(table_is(topo, full_table(topo, (1, 1, 1))), "r2 back at weight 1")
    assert count(topo.requests(30)) == {"r1": 10, "r2": 10, "r3": 10}


def test_removed_real_then_fallback_while_every_real_is_down(topo: Topology, start: Start) -> None:
    daemon = start(quiescent=False, fallback=True)
    assert topo.fallback is not None
    r1, r2, r3 = topo.reals
    wait_for(table_is(topo, full_table(topo, (1, 1, 1))), "every real up")
    # (until the first good check, no real is up: the fallback may stand in at start)
    seen = len(daemon.events())

    took = take_out(topo, daemon, r2, "ok.html changed")
    assert took <= DETECTION + ALLOWANCE, f"r2 removed after {took:.1f} s"
    assert sorted(topo.table()) == sorted([service_line(), dest_line(r1, 1), dest_line(r3, 1)])
    assert count(topo.requests(100)) == {"r1": 50, "r3": 50}

    for server in topo.reals:
        topo.fail(server)
    wait_for(table_is(topo, [service_line(), dest_line(topo.fallback, 1)]), "fallback only")
    assert count(topo.requests(20)) == {"fallback": 20}

    topo.fail(r1, failing=False)  # one real recovers: the fallback leaves, r1 takes it all
    wait_for(table_is(topo, [service_line(), dest_line(r1, 1)]), "r1 back, no fallback")
    assert count(topo.requests(20)) == {"r1": 20}

    topo.heal_all()
    wait_for(table_is(topo, full_table(topo, (1, 1, 1))), "every real back, no fallback")
    assert count(topo.requests(30)) == {"r1": 10, "r2": 10, "r3": 10}
    events = [str(e["event"]) for e in daemon.events()[seen:]]
    assert [e for e in events if e.startswith("fallback.")] == ["fallback.on", "fallback.off"]


def test_sighup_applies_only_the_change_and_a_broken_config_changes_nothing(
    topo: Topology, start: Start, workdir: Path
) -> None:
    daemon = start()
    r1, r2, r3 = topo.reals
    topo.fail(r3)
    wait_for(table_is(topo, full_table(topo, (1, 1, 0))), "r3 down")

    # the edit: r2's weight 1 -> 3; r1 (up) and r3 (down) keep their health: no op for them
    daemon.config.write_text(config_text(topo, workdir, weights=(1, 3, 1)))
    ops_before = len(daemon.events("ipvs.op_applied"))
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: daemon.events("engine.reloaded"), "the reload")
    expected = full_table(topo, (1, 3, 0))
    assert sorted(topo.table()) == expected
    applied = [e["op"] for e in daemon.events("ipvs.op_applied")[ops_before:]]
    assert applied == [f"edit-dest tcp/{VIP}:80 {r2.endpoint} masq w=3"]

    # a broken file: logged, and the running config (with r3's health) stays in force
    good = daemon.config.read_text()
    daemon.config.write_text(good.replace(f"real={r1.endpoint} masq 1", "real=nonsense masq 1"))
    ops_before = len(daemon.events("ipvs.op_applied"))
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: daemon.events("config.reload_failed"), "the refused reload")
    assert sorted(topo.table()) == expected
    assert daemon.events("ipvs.op_applied")[ops_before:] == []
    topo.fail(r3, failing=False)
    wait_for(table_is(topo, full_table(topo, (1, 3, 1))), "r3 up")

    # SIGTERM with cleanstop=yes (the default) deletes healthd's service
    assert daemon.stop() == 0
    assert topo.table() == []


def test_restart_fails_no_client_request(topo: Topology, start: Start, workdir: Path) -> None:
    daemon = start(cleanstop=False)
    wait_for(table_is(topo, full_table(topo, (1, 1, 1))), "every real up")
    table = topo.table()
    until = workdir / "client-running"
    client = topo.start_requests(until)
    assert daemon.stop() == 0
    stopped = time.time()
    assert topo.table() == table  # cleanstop=no leaves the service as it is
    ops_before = len(daemon.events("ipvs.op_applied"))
    daemon.start()
    restarted = time.time()
    answers = topo.finish_requests(client, until)
    assert [a for _, a in answers if a.startswith("error:")] == []
    assert {a for _, a in answers} == {"r1", "r2", "r3"}
    assert any(stopped < t < restarted for t, _ in answers), "no request while healthd was down"
    # the new daemon adopts the table: reals at weight > 0 are taken as up, nothing changes
    assert daemon.events("ipvs.op_applied")[ops_before:] == []
    assert topo.table() == table


def test_services_it_does_not_own_are_left_alone(topo: Topology, start: Start) -> None:
    _, r2, r3 = topo.reals
    topo.ipvsadm("-A", "-t", f"{VIP}:8080", "-s", "wlc")
    for server in (r2, r3):
        topo.ipvsadm("-a", "-t", f"{VIP}:8080", "-r", server.endpoint, "-m", "-w", "5")
    other = [f"-A -t {VIP}:8080 -s wlc", *(dest_line(s, 5, vport=8080) for s in (r2, r3))]
    daemon = start()
    # two services with destinations: the driver's dump must read both (no EBUSY)
    wait_for(table_is(topo, [*full_table(topo, (1, 1, 1)), *other]), "every real up")
    assert daemon.events("ipvs.dump_failed") == []
    proc = topo.director.run([sys.executable, "-m", "healthd", "ipvs", "dump"], check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == topo.ipvsadm("-Sn")
    assert daemon.stop() == 0
    assert sorted(topo.table()) == sorted(other)  # cleanstop deletes only healthd's own
