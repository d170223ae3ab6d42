"""The world of tests/kernel/test_cluster.py: a router, two directors, two reals, a client.

    client c (203.0.113.130) -- r (203.0.113.129)        router: ECMP over BGP from BIRD,
                                r br0 203.0.113.1/25     L4 multipath hashing
           d1 front 203.0.113.2 ---+--- d2 front 203.0.113.3   (sync daemon's link too)
                                r br1 198.51.100.1/24    the reals' gateway
           d1 back 198.51.100.2 ---+--- d2 back 198.51.100.3
                       s1 198.51.100.11, s2 198.51.100.12

Both directors hold the VIP 192.0.2.10 on loopback and run healthd (direct routing to
the reals, which hold the VIP on loopback too) and BIRD with etc/examples/bird2-director.conf,
exporting healthd's table 100 to the router's BIRD. Director d1 checks the reals on port
81, d2 on port 82, so one director's view of the reals can fail on its own.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.kernel.e2e_helpers import Healthd, wait_for
from tests.kernel.netns import Lab, Netns, add_address

CHECKOUT = Path(__file__).resolve().parents[2]
BIRD_EXAMPLE = CHECKOUT / "etc" / "examples" / "bird2-director.conf"
VIP = "192.0.2.10"
VRRP_VIP = "203.0.113.100"  # the active/backup VIP, owned by keepalived's VRRP
PORT = 80
TABLE = 100
REALS = {"s1": "198.51.100.11", "s2": "198.51.100.12"}
DIRECTORS = {"d1": ("203.0.113.2", "198.51.100.2", 81), "d2": ("203.0.113.3", "198.51.100.3", 82)}
ROUTER_BIRD = """\
router id 203.0.113.1;
protocol device {}
protocol kernel { merge paths on; ipv4 { import none; export all; }; }
template bgp director {
	local 203.0.113.1 as 65000; direct; hold time 3; keepalive time 1; connect retry time 2;
	ipv4 { import all; export none; };
}
protocol bgp d1 from director { neighbor 203.0.113.2 as 65001; }
protocol bgp d2 from director { neighbor 203.0.113.3 as 65001; }
"""


def sysctl(ns: Netns, *settings: str) -> None:
    ns.run(["sysctl", "-q", "-w", *settings])


@dataclass
class Director:
    """One director: its namespace, its addresses and its healthd and BIRD."""

    name: str
    ns: Netns
    front: str
    check_port: int
    workdir: Path
    healthd: Healthd | None = None
    bird: subprocess.Popen[str] | None = None
    keepalived: subprocess.Popen[str] | None = None

    @property
    def director(self) -> Netns:  # what e2e_helpers.Healthd reads of its topology
        return self.ns

    def config(self, *, syncd: bool) -> str:
        sync = "syncd=both\nsyncd_interface=front\nsyncd_id=7\n" if syncd else ""
        listen = "http_listen=127.0.0.1:9188\n" if syncd else ""
        return (
            f'logfile="{self.workdir}/healthd.log"\nchecktimeout=1\ncheckinterval=1\n'
            f"resync_interval=2\n{sync}{listen}"
            f"virtual={VIP}:{PORT}\n"
            + "".join(f"    real={a}:{PORT} gate\n" for a in REALS.values())
            + f"    scheduler=mh\n    schedflags=mh-port\n    checktype=connect\n"
            f"    checkport={self.check_port}\n    announce_table={TABLE}\n"
            f"virtual={VRRP_VIP}:{PORT}\n"
            + "".join(f"    real={a}:{PORT} gate\n" for a in REALS.values())
            + f"    scheduler=mh\n    checktype=connect\n    checkport={self.check_port}\n"
        )

    def start_healthd(self, *, syncd: bool = False) -> Healthd:
        path = self.workdir / "cluster.cf"
        path.write_text(self.config(syncd=syncd))
        self.healthd = Healthd(self, path, self.workdir)  # type: ignore[arg-type]
        self.healthd.start()
        return self.healthd

    def start_bird(self) -> None:
        text = BIRD_EXAMPLE.read_text().replace("203.0.113.2", self.front)
        conf = self.workdir / "bird.conf"
        conf.write_text(text)
        self.bird = bird(self.ns, conf, self.workdir)

    def start_keepalived(self, priority: int) -> subprocess.Popen[str]:
        """Start keepalived's VRRP alone, owning VRRP_VIP on the front link (priority)."""
        conf = self.workdir / "keepalived.conf"
        conf.write_text(
            "global_defs {\n    router_id " + self.name + "\n}\n"
            "vrrp_instance lvs {\n    state BACKUP\n    interface front\n"
            f"    virtual_router_id 51\n    priority {priority}\n    advert_int 1\n"
            f"    virtual_ipaddress {{\n        {VRRP_VIP}/25 dev front\n    }}\n}}\n"
        )
        pids = [f"--{k}={self.workdir / k}.pid" for k in ("pid", "vrrp_pid", "checkers_pid")]
        argv = ["keepalived", "-n", "-l", "-P", "-f", str(conf), *pids]
        self.keepalived = self.ns.popen(argv)
        return self.keepalived

    def holds(self, address: str) -> bool:
        return f"inet {address}/" in self.ns.ip("addr", "show", "front")

    def vconns(self, address: str) -> int:
        """Return the connections this director's IPVS scheduled for ADDRESS:80."""
        for line in self.ipvsadm("-Ln", "--stats").splitlines():
            if line.startswith("TCP") and f"{address}:{PORT}" in line:
                return int(line.split()[2])
        return 0

    def ipvsadm(self, *args: str) -> str:
        return self.ns.run(["ipvsadm", *args]).stdout

    def conns(self) -> int:
        """Return the connections this director's IPVS scheduled (its virtual's Conns)."""
        for line in self.ipvsadm("-Ln", "--stats").splitlines():
            if line.startswith("TCP") and VIP in line:
                return int(line.split()[2])
        return 0


def bird(ns: Netns, conf: Path, workdir: Path) -> subprocess.Popen[str]:
    """Start BIRD in the foreground in NS on CONF (its socket in WORKDIR)."""
    argv = ["bird", "-f", "-c", str(conf), "-s", str(workdir / "bird.ctl")]
    argv += ["-P", str(workdir / "bird.pid")]
    return ns.popen(argv)


@dataclass
class World:
    lab: Lab
    router: Netns
    client: Netns
    state: Path
    base: Path
    directors: dict[str, Director] = field(default_factory=dict)
    reals: dict[str, Netns] = field(default_factory=dict)

    def healthd_everywhere(self) -> None:
        """Start healthd (with the sync daemon) on each director where it does not run."""
        for d in self.directors.values():
            if d.healthd is None or d.healthd.proc is None or d.healthd.proc.poll() is not None:
                d.start_healthd(syncd=True)

    def nexthops(self) -> set[str]:
        """Return the router's next hops for the VIP (empty while it has no route)."""
        out = self.router.run(["ip", "route", "show", f"{VIP}/32"]).stdout
        return set(re.findall(r"via (\S+)", out))

    def wait_nexthops(self, expected: set[str], what: str, timeout: float = 60.0) -> float:
        """Wait until the router's next hops are EXPECTED; return the wall time they were."""
        try:
            wait_for(lambda: self.nexthops() == expected or None, what, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.report()}") from None
        return time.time()

    def report(self) -> str:
        """Return the routing state of every namespace and the directors' logs (failures)."""
        parts = [f"router: {self.router.run(['ip', 'route']).stdout}"]
        parts.append(
            self.router.run(
                ["birdc", "-s", str(self.base / "bird.ctl"), "show", "protocols"], check=False
            ).stdout
        )
        for d in self.directors.values():
            table = d.ns.run(["ip", "route", "show", "table", str(TABLE)], check=False).stdout
            birdc = ["birdc", "-s", str(d.workdir / "bird.ctl")]
            protocols = d.ns.run([*birdc, "show", "protocols"], check=False).stdout
            routes = d.ns.run([*birdc, "show", "route", "table", "healthd4"], check=False).stdout
            log = d.healthd.output()[-3000:] if d.healthd is not None else "(no healthd)"
            parts.append(f"--- {d.name}: table {TABLE}: {table}\n{protocols}\n{routes}\n{log}")
        return "\n".join(parts)

    def fail_view(self, director: Director, failing: bool = True) -> None:
        for name in self.reals:
            flag = self.state / f"{name}.{director.check_port}.fail"
            if failing:
                flag.touch()
            else:
                flag.unlink(missing_ok=True)

    def peers(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tests.kernel.cluster_peers", *args]

    def start_load(self, until: Path, least: int = 1, address: str = VIP) -> subprocess.Popen[str]:
        """Start the client's requests; return once it sends them."""
        until.unlink(missing_ok=True)
        proc = self.client.popen(self.peers("load", address, str(PORT), str(until), str(least)))
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        return proc

    def finish_load(self, proc: subprocess.Popen[str], until: Path) -> list[list[object]]:
        until.touch()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        result: list[list[object]] = json.loads(out)
        return result

    def close(self) -> None:
        for d in self.directors.values():
            if d.healthd is not None:
                d.healthd.kill()
        self.lab.close()


def _port(lab: Lab, bridge: str, router: Netns, ns: Netns, dev: str, address: str) -> None:
    """Put NS on the router's BRIDGE with a veth named DEV in NS holding ADDRESS."""
    n = next(lab._ids)
    outer = f"p{n}"
    subprocess.run(
        ["ip", "link", "add", outer, "netns", router.name, "type", "veth",
         "peer", dev, "netns", ns.name],
        check=True,
    )  # fmt: skip
    router.ip("link", "set", outer, "master", bridge, "up")
    add_address(ns, dev, address)


def _real(world: World, lab: Lab, name: str, address: str) -> None:
    ns = lab.netns(name)
    _port(lab, "br1", world.router, ns, "back", f"{address}/24")
    ns.ip("addr", "add", f"{VIP}/32", "dev", "lo")
    ns.ip("addr", "add", f"{VRRP_VIP}/32", "dev", "lo")
    sysctl(ns, "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
    ns.ip("route", "add", "default", "via", "198.51.100.1")
    ports = [str(p) for _, _, p in DIRECTORS.values()]
    proc = ns.popen(world.peers("serve", name, str(world.state), str(PORT), *ports))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    world.reals[name] = ns


def _director(world: World, lab: Lab, name: str, workdir: Path) -> None:
    front, back, check_port = DIRECTORS[name]
    ns = lab.netns(name)
    _port(lab, "br0", world.router, ns, "front", f"{front}/25")
    _port(lab, "br1", world.router, ns, "back", f"{back}/24")
    ns.ip("addr", "add", f"{VIP}/32", "dev", "lo")
    sysctl(ns, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
    workdir.mkdir(parents=True, exist_ok=True)
    world.directors[name] = Director(name, ns, front, check_port, workdir)


def build(base: Path) -> World:
    """Make the world (namespaces, links, reals, BIRD everywhere); healthd is not started."""
    lab = Lab("cl")
    try:
        router, client = lab.netns("r"), lab.netns("c")
        state = base / "state"
        state.mkdir(parents=True, exist_ok=True)
        world = World(lab, router, client, state, base)
        for bridge, address in (("br0", "203.0.113.1/25"), ("br1", "198.51.100.1/24")):
            router.ip("link", "add", bridge, "type", "bridge")
            add_address(router, bridge, address)
        lab.veth(client, "203.0.113.130/30", router, "203.0.113.129/30")
        client.ip("route", "add", "default", "via", "203.0.113.129")
        sysctl(router, "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1",
               "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")  # fmt: skip
        for name, address in REALS.items():
            _real(world, lab, name, address)
        for name in DIRECTORS:
            _director(world, lab, name, base / name)
        (base / "router.conf").write_text(ROUTER_BIRD)
        world.router_bird = bird(router, base / "router.conf", base)  # type: ignore[attr-defined]
        for d in world.directors.values():
            d.start_bird()
    except BaseException:
        lab.close()
        raise
    return world


def stop(director: Director) -> float:
    """TERM the director's healthd; return the wall time it was sent."""
    assert director.healthd is not None
    assert director.healthd.proc is not None
    sent = time.time()
    director.healthd.signal(signal.SIGTERM)
    director.healthd.proc.wait(60)
    return sent
