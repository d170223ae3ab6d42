"""Active/active directors in the real kernel: routes over BGP, ECMP, the sync daemon.

Inside the test VM: the world of tests/kernel/cluster_world.py (a router running BIRD with
ECMP, two directors each running healthd and BIRD with etc/examples/bird2-director.conf,
two real servers, a client). The tests prove that both directors carry traffic, that a
director whose view of the reals fails or whose healthd stops withdraws its route with no
failed request beyond the routing convergence, and that with the sync daemon and the mh
scheduler an established TCP connection survives the loss of the director carrying it.
They measure detection, convergence and failed requests, written as JSON to the VM's
results share (bench/cluster.py reads them from there into bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path

import pytest

from healthd.ipvs.netlink import CLONE_NEWNET, NetlinkDriver
from healthd.ipvs.syncd_wire import SyncDaemon
from healthd.routes.plan import Route
from healthd.routes.rtnl import RouteError, Rtnl
from tests.kernel.cluster_world import VIP, VRRP_VIP, World, build, stop
from tests.kernel.e2e_helpers import wait_for
from tests.kernel.netns import Lab
from tests.kernel.vm import GUEST_RESULTS

pytestmark = pytest.mark.kernel

MEASURED: dict[str, object] = {}
D1, D2 = "203.0.113.2", "203.0.113.3"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    made = build(Path(str(tmp_path_factory.mktemp("cl"))))
    yield made
    made.close()
    share = Path(GUEST_RESULTS)  # the host directory bench/cluster.py reads them from
    if MEASURED and os.environ.get("HEALTHD_VM") == "1" and share.is_dir():
        (share / "cluster.json").write_text(json.dumps(MEASURED, indent=2) + "\n")


def test_rtnl_and_the_sync_daemon_commands_against_the_kernel(lab: Lab) -> None:
    ns = lab.netns("k")
    ns.ip("link", "add", "vip0", "type", "dummy")
    ns.ip("link", "set", "vip0", "up")

    async def run() -> None:
        table, address = Route(ip_address(VIP), table=100), Route(ip_address(VIP), interface="vip0")
        v6 = Route(ip_address("2001:db8::10"), table=100)
        rtnl = Rtnl()
        for route in (table, address, v6):
            await rtnl.announce(route)
            await rtnl.announce(route)  # again: no error
            assert await rtnl.present(route)
        assert "192.0.2.10 dev lo proto 211 scope link" in ns.ip("route", "show", "table", "100")
        assert "2001:db8::10 dev lo proto 211" in ns.ip("-6", "route", "show", "table", "100")
        assert "inet 192.0.2.10/32" in ns.ip("addr", "show", "vip0")
        for route in (table, address, v6):
            await rtnl.withdraw(route)
            await rtnl.withdraw(route)  # already gone: no error
            assert not await rtnl.present(route)
        with pytest.raises(RouteError) as info:
            await rtnl.announce(Route(ip_address(VIP), interface="nowhere0"))
        assert info.value.errno == errno.ENODEV
        rtnl.close()
        driver = NetlinkDriver()
        await driver.start_daemon(SyncDaemon("master", "vip0", 5))
        await driver.start_daemon(SyncDaemon("backup", "lo", 5))
        assert await driver.daemons() == [
            SyncDaemon("backup", "lo", 5),
            SyncDaemon("master", "vip0", 5),
        ]
        witness = ns.run(["ipvsadm", "-L", "--daemon"]).stdout
        assert "master sync daemon (mcast=vip0, syncid=5," in witness
        assert "backup sync daemon (mcast=lo, syncid=5," in witness
        await driver.stop_daemon("master")
        await driver.stop_daemon("backup")
        assert await driver.daemons() == []
        await driver.aclose()

    # the calls run in the namespace: a thread of this process enters it (setns is per thread)
    failure: list[BaseException] = []

    def inside() -> None:
        try:
            with open(f"/run/netns/{ns.name}", "rb") as f:
                libc = ctypes.CDLL(None, use_errno=True)
                assert libc.setns(f.fileno(), CLONE_NEWNET) == 0, ctypes.get_errno()
            asyncio.run(run())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=inside)
    thread.start()
    thread.join(120)
    if failure:
        raise failure[0]


def _share(world: World, before: dict[str, int], least: int) -> dict[str, int]:
    """Return each director's new connections once LEAST are counted in all.

    The kernel refreshes the counters every 2 s (with its rate estimator).
    """

    def counted() -> dict[str, int] | None:
        found = {n: d.conns() - before[n] for n, d in world.directors.items()}
        return found if sum(found.values()) >= least else None

    return wait_for(counted, f"{least} connections counted", timeout=15)


def _stamp(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def _failures(results: list[list[object]]) -> list[float]:
    return [float(t) for t, ok, _ in results if not ok]  # type: ignore[arg-type]


def _measure(
    name: str,
    world: World,
    action: float,
    converged: float,
    results: list[list[object]],
    **more: object,
) -> None:
    failed = _failures(results)
    MEASURED[name] = {
        "requests": len(results),
        "failed": len(failed),
        "errors": sorted({str(answer) for _, ok, answer in results if not ok}),
        "converged_s": round(converged - action, 3),
        **more,
    }
    print(name, MEASURED[name])


def test_both_directors_carry_traffic_and_withdraw_on_failure(world: World, tmp_path: Path) -> None:
    d1, d2 = world.directors["d1"], world.directors["d2"]
    d1.start_healthd(syncd=True)
    d2.start_healthd(syncd=True)
    world.wait_nexthops({D1, D2}, "ECMP over both directors")
    before = {n: d.conns() for n, d in world.directors.items()}
    until = tmp_path / "until"
    load = world.start_load(until, least=40)  # 40 flows, each its own source port
    time.sleep(2)
    results = world.finish_load(load, until)
    share = _share(world, before, len(results))
    print("share", share)
    assert share["d1"] > 0, share  # L4 hashing spreads the flows over both
    assert share["d2"] > 0, share
    assert _failures(results) == []
    MEASURED["steady"] = {"requests": len(results), "failed": 0, "share": share}

    # every real fails in d1's view: d1 withdraws its route, d2 carries everything
    load = world.start_load(until)
    time.sleep(1)
    action = time.time()
    world.fail_view(d1)
    converged = world.wait_nexthops({D2}, "d1's route withdrawn")
    time.sleep(2)
    heal = time.time()
    world.fail_view(d1, failing=False)
    back = world.wait_nexthops({D1, D2}, "d1's route back")
    time.sleep(1)
    results = world.finish_load(load, until)
    assert d1.healthd is not None
    withdrawn = _stamp(d1.healthd.events("route.withdrawn")[-1])
    down = _stamp(d1.healthd.events("real.down")[-1])
    windows = [(action, converged), (heal, back)]  # a request started while a route changed
    late = [t for t in _failures(results) if not any(a <= t <= b for a, b in windows)]
    assert late == [], f"failed requests outside the convergence ({windows}): {results}"
    _measure("view_fails", world, action, converged, results,
             detection_s=round(down - action, 3), withdraw_after_down_s=round(withdrawn - down, 3),
             router_after_withdraw_s=round(converged - withdrawn, 3),
             return_s=round(back - action, 3))  # fmt: skip

    # d2's healthd stops: it withdraws first, then empties its table (cleanstop)
    load = world.start_load(until)
    time.sleep(1)
    action = stop(d2)
    converged = world.wait_nexthops({D1}, "d2's route withdrawn on stop")
    time.sleep(2)
    results = world.finish_load(load, until)
    late = [t for t in _failures(results) if not action <= t <= converged]
    assert late == [], f"failed requests outside the convergence ({action}, {converged}): {results}"
    assert d2.healthd is not None
    withdrawn = _stamp(d2.healthd.events("route.withdrawn")[-1])
    _measure("healthd_stops", world, action, converged, results,
             withdraw_after_term_s=round(withdrawn - action, 3))  # fmt: skip
    d2.start_healthd(syncd=True)  # for the next test


def test_keepalived_vrrp_moves_the_vip_and_the_backups_healthd_serves(
    world: World, tmp_path: Path
) -> None:
    d1, d2 = world.directors["d1"], world.directors["d2"]
    world.healthd_everywhere()
    master, backup = d1.start_keepalived(150), d2.start_keepalived(100)
    wait_for(lambda: d1.holds(VRRP_VIP) or None, "d1 is the VRRP master")
    until = tmp_path / "until"
    before = {n: d.vconns(VRRP_VIP) for n, d in world.directors.items()}
    load = world.start_load(until, least=10, address=VRRP_VIP)
    time.sleep(1)
    action = time.time()
    master.send_signal(signal.SIGTERM)  # the master leaves: it says so (priority 0)
    master.wait(30)
    wait_for(lambda: d2.holds(VRRP_VIP) or None, "the VIP moves to d2")
    moved = time.time()
    assert not d1.holds(VRRP_VIP)
    time.sleep(2)
    results = world.finish_load(load, until)

    def served() -> dict[str, int] | None:  # the kernel refreshes its counters every 2 s
        found = {n: d.vconns(VRRP_VIP) - before[n] for n, d in world.directors.items()}
        return found if found["d2"] > 0 else None

    counted = wait_for(served, "d2's healthd serves the VIP", timeout=15)
    assert counted["d1"] > 0, counted  # d1 served until it left
    late = [t for t in _failures(results) if not action <= t <= moved + 1]
    assert late == [], f"failed requests outside the takeover ({action}, {moved}): {results}"
    _measure("vrrp_takeover", world, action, moved, results, share=counted)
    backup.send_signal(signal.SIGTERM)
    backup.wait(30)


def test_an_established_connection_survives_the_loss_of_its_director(
    world: World, tmp_path: Path
) -> None:
    d1, d2 = world.directors["d1"], world.directors["d2"]
    world.healthd_everywhere()
    world.wait_nexthops({D1, D2}, "ECMP over both directors")
    for d in (d1, d2):
        daemons = d.ipvsadm("-L", "--daemon")
        assert "master sync daemon (mcast=front, syncid=7," in daemons
        assert "backup sync daemon (mcast=front, syncid=7," in daemons
    assert d1.healthd is not None
    argv = [sys.executable, "-m", "healthd", "-c", str(d1.workdir / "cluster.cf"), "status"]
    status = subprocess.run(
        d1.ns.argv([*argv, "--format", "json"]), env=d1.healthd.env(), capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    view = json.loads(status.stdout)
    assert len(view["syncd"]["running"]) == 2, status
    assert view["routes"] == [
        {"route": f"route {VIP}/32 table 100", "announced": True, "error": False}
    ]
    text = subprocess.run(
        d1.ns.argv(argv), env=d1.healthd.env(), capture_output=True, text=True, check=False
    ).stdout
    assert "sync daemon: backup on front (syncid 7), master on front (syncid 7)" in text
    fetch = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:9188/metrics').read().decode())"
    metrics = d1.ns.run([sys.executable, "-c", fetch]).stdout
    assert 'healthd_syncd_state{role="master"} 1.0' in metrics
    assert f'healthd_route_announced{{route="route {VIP}/32 table 100"}} 1.0' in metrics

    before = {n: d.conns() for n, d in world.directors.items()}
    go = tmp_path / "go"
    hold = world.client.popen(world.peers("hold", VIP, "80", "16", str(go)))
    assert hold.stdout is not None
    first = json.loads(hold.stdout.readline())

    share = _share(world, before, len(first))
    carried = share["d1"]
    state = f"{share} {world.nexthops()}\n{d1.ipvsadm('-Lnc')}\n{d2.ipvsadm('-Lnc')}"
    assert carried > 0, f"d1 carries none of the 16 connections: {state}"
    assert all(answer.endswith("again") for _, answer in first), first
    time.sleep(3)  # the sync master sends its buffer at least every second or two
    synced = d2.ipvsadm("-Lnc")
    ports = [port for port, _ in first]
    assert all(f"203.0.113.130:{p}" in synced for p in ports), synced

    # d1 is lost: its link goes down and its healthd dies without a word
    action = time.time()
    d1.healthd.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    d1.ns.ip("link", "set", "front", "down")
    converged = world.wait_nexthops({D2}, "the router drops d1 (hold time)")
    go.touch()
    second = json.loads(hold.stdout.readline())
    hold.wait(60)
    reals = dict(first)
    lost = [
        (p, a) for p, a in second if not a.endswith("again") or a.split()[0] != reals[p].split()[0]
    ]
    assert lost == [], f"connections lost or moved: {lost} (first: {first})"
    MEASURED["director_lost"] = {
        "connections": len(first),
        "carried_by_lost_director": carried,
        "survived": len(second) - len(lost),
        "converged_s": round(converged - action, 3),
    }
    print("director_lost", MEASURED["director_lost"])
