"""The end-to-end world of tests/kernel/test_e2e_*.py: a director, a client and real servers.

A Topology builds, inside the test VM, a director namespace holding the VIP (203.0.113.10 on a
dummy) and IPVS, a client namespace on a veth facing it, and real servers (198.51.100.11...)
plus a fallback server on a bridge behind the director, which is their default gateway (NAT).
Each server is a small HTTP process: /ok.html answers "ok" (500 while NAME.fail exists in the
state directory, or the text of NAME.body when that file exists) and / answers its name.
Healthd runs in the director from a config file, as a user runs it (`healthd -c FILE`).
build(state, IPV6) makes the same world in 2001:db8::/32 (VIP 2001:db8::10, reals
2001:db8:1::11...), and mark_vip() marks the VIP's packets in the director with nftables, for
firewall-mark virtual services.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import ip_address
from pathlib import Path
from typing import TypeVar

from checks.base import host_text
from tests.kernel.netns import Lab, Netns, add_address

VIP = "203.0.113.10"
VPORT = 80
CLIENT_ADDRESS = "203.0.113.2"
DIRECTOR_CLIENT_SIDE = "203.0.113.1"
GATEWAY = "198.51.100.1"  # the director on the reals' bridge
REAL_ADDRESSES = ("198.51.100.11", "198.51.100.12", "198.51.100.13")
FALLBACK_ADDRESS = "198.51.100.99"
WAIT = 60.0  # seconds any awaited state may take in the emulated VM before a test fails


@dataclass(frozen=True)
class Addressing:
    """The addresses of one topology: the VIP, the client's link and the reals' bridge."""

    vip: str
    client: str
    director_client_side: str
    gateway: str  # the director on the reals' bridge
    reals: tuple[str, ...]
    fallback: str
    prefix: int  # of the client's link and of the bridge

    @property
    def version(self) -> int:
        return ip_address(self.vip).version


IPV4 = Addressing(
    VIP, CLIENT_ADDRESS, DIRECTOR_CLIENT_SIDE, GATEWAY, REAL_ADDRESSES, FALLBACK_ADDRESS, 24
)
IPV6 = Addressing(
    vip="2001:db8::10",
    client="2001:db8:c::2",
    director_client_side="2001:db8:c::1",
    gateway="2001:db8:1::1",
    reals=("2001:db8:1::11", "2001:db8:1::12", "2001:db8:1::13"),
    fallback="2001:db8:1::99",
    prefix=64,
)


SERVER = r"""
import os, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, state = sys.argv[1], sys.argv[2]
host = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"
if ":" in host:
    ThreadingHTTPServer.address_family = socket.AF_INET6

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        code, body = 200, name.encode()
        if self.path == "/ok.html":
            body = b"ok"
            if os.path.exists(os.path.join(state, name + ".fail")):
                code, body = 500, b"broken"
            elif os.path.exists(os.path.join(state, name + ".body")):
                with open(os.path.join(state, name + ".body"), "rb") as f:
                    body = f.read()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

srv = ThreadingHTTPServer((host, 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""

# Sends COUNT requests to HOST:PORT, one connection each (so IPVS schedules each one), or
# keeps going while the file UNTIL exists; prints the JSON list of [time, answer] pairs, the
# answer being the name of the server or "error:<what went wrong>".
CLIENT = r"""
import json, os, socket, sys, time
host, port, count, timeout, until = sys.argv[1:6]
port, count, timeout = int(port), int(count), float(timeout)
answers = []

def ask():
    try:
        with socket.create_connection((host, port), timeout=timeout) as c:
            c.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
            data = b""
            while chunk := c.recv(4096):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.0 200"):
            return "error:" + head.split(b"\r\n")[0].decode(errors="replace")
        return body.decode(errors="replace")
    except OSError as exc:
        return "error:" + type(exc).__name__

while len(answers) < count or (until and os.path.exists(until)):
    answers.append((time.time(), ask()))
print(json.dumps(answers), flush=True)
"""

T = TypeVar("T")


def wait_for(what: Callable[[], T | None], description: str, timeout: float = WAIT) -> T:
    """Poll WHAT until it returns something truthy; return it, or fail naming DESCRIPTION."""
    end = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{description}: not reached within {timeout:g} s")
        time.sleep(0.1)


@dataclass
class Server:
    """One HTTP server process in its own namespace."""

    name: str
    address: str
    port: int
    netns: Netns

    @property
    def endpoint(self) -> str:
        return f"{host_text(self.address)}:{self.port}"


@dataclass
class Topology:
    """Director, client, reals r1..r3 and a fallback server; close() removes them all."""

    lab: Lab
    state: Path  # where NAME.fail / NAME.body switch the servers' /ok.html
    director: Netns
    client: Netns
    reals: list[Server] = field(default_factory=list)
    fallback: Server | None = None
    addressing: Addressing = IPV4

    @property
    def vip(self) -> str:
        return self.addressing.vip

    def fail(self, server: Server, failing: bool = True) -> None:
        """Make SERVER's /ok.html answer 500 (or answer "ok" again)."""
        flag = self.state / f"{server.name}.fail"
        if failing:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def set_body(self, server: Server, body: str | None) -> None:
        """Make SERVER's /ok.html answer BODY with status 200 (None: "ok" again)."""
        path = self.state / f"{server.name}.body"
        if body is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(body)

    def heal_all(self) -> None:
        """Make every server healthy again."""
        for path in [*self.state.glob("*.fail"), *self.state.glob("*.body")]:
            path.unlink()

    def server_errors(self) -> str:
        """Return what the servers wrote to stderr (tracebacks), for failure reports."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.state.glob("*.stderr")))

    def ipvsadm(self, *args: str) -> str:
        """Run ipvsadm in the director and return its output."""
        return self.director.run(["ipvsadm", *args]).stdout

    def table(self) -> list[str]:
        """Return the director's IPVS table as `ipvsadm -Sn` lines."""
        return self.ipvsadm("-Sn").splitlines()

    def requests(self, count: int, *, timeout: float = 3.0, port: int = VPORT) -> list[str]:
        """Send COUNT requests to the VIP (at PORT) from the client; return who answered each."""
        out = self.client.run(self._client_argv(count, timeout, "", port)).stdout
        return [answer for _, answer in json.loads(out)]

    def start_requests(self, until: Path, *, timeout: float = 3.0) -> subprocess.Popen[str]:
        """Start a client that sends requests while UNTIL exists; read its answers later."""
        until.touch()
        return self.client.popen(self._client_argv(1, timeout, str(until)))

    def finish_requests(self, proc: subprocess.Popen[str], until: Path) -> list[tuple[float, str]]:
        """Stop a client started by start_requests; return its (time, answer) pairs."""
        until.unlink()
        out, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
        return [(t, answer) for t, answer in json.loads(out)]

    def _client_argv(self, count: int, timeout: float, until: str, port: int = VPORT) -> list[str]:
        return [sys.executable, "-c", CLIENT, self.vip, str(port), str(count), str(timeout), until]

    def close(self) -> None:
        """Stop the servers and delete the namespaces."""
        self.lab.close()


def count(answers: list[str]) -> Counter[str]:
    """Return how many answers each server (or error) gave."""
    return Counter(answers)


def _spawn_server(
    ns: Netns, name: str, state: Path, host: str = "0.0.0.0"
) -> subprocess.Popen[str]:
    # stderr to a file: a pipe nobody reads would fill up and block the server
    with (state / f"{name}.stderr").open("w") as err:
        proc = subprocess.Popen(
            ns.argv([sys.executable, "-c", SERVER, name, str(state), host]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    ns.procs.append(proc)  # the Lab kills it on close()
    return proc


def _await_server(ns: Netns, name: str, address: str, proc: subprocess.Popen[str]) -> Server:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        proc.wait()
        raise AssertionError(f"server {name} did not start (see its .stderr file)")
    return Server(name, address, int(line), ns)


def _attach(
    director: Netns, ns: Netns, address: str, index: int, addressing: Addressing = IPV4
) -> None:
    """Link NS to the director's bridge with ADDRESS/prefix and the director as its gateway."""
    here, there = f"e2e{index}d", f"e2e{index}s"
    director.ip("link", "add", here, "type", "veth", "peer", there, "netns", ns.name)
    director.ip("link", "set", here, "master", "br0", "up")
    add_address(ns, there, f"{address}/{addressing.prefix}")
    ns.ip(f"-{addressing.version}", "route", "add", "default", "via", addressing.gateway)


def build(state: Path, addressing: Addressing = IPV4, *, prefix: str = "e2e") -> Topology:
    """Create the namespaces, links, addresses and servers (see the module docstring).

    PREFIX starts the namespaces' names: topologies that live at the same time need their own.
    """
    lab = Lab(prefix=prefix)
    a = addressing
    try:
        director, client = lab.netns("lb"), lab.netns("cl")
        lab.veth(client, f"{a.client}/{a.prefix}", director, f"{a.director_client_side}/{a.prefix}")
        lab.dummy(director, f"{a.vip}/{32 if a.version == 4 else 128}")
        if a.version == 6:
            # kernel: neighbour discovery answers only for the link's own addresses (ARP answers
            # for any of the host's): the client routes the VIP through the director
            client.ip("-6", "route", "add", a.vip, "via", a.director_client_side)
        # kernel: masq needs the director to forward the reals' replies back to the client
        forwarding = "net.ipv4.ip_forward" if a.version == 4 else "net.ipv6.conf.all.forwarding"
        director.run(["sysctl", "-qw", f"{forwarding}=1"])
        director.ip("link", "add", "br0", "type", "bridge")
        add_address(director, "br0", f"{a.gateway}/{a.prefix}")
        topo = Topology(lab, state, director, client, addressing=a)
        names = [(f"r{i}", address) for i, address in enumerate(a.reals, start=1)]
        names.append(("fallback", a.fallback))
        host = "0.0.0.0" if a.version == 4 else "::"
        started = []
        for i, (name, address) in enumerate(names, start=1):
            ns = lab.netns(name)
            _attach(director, ns, address, i, a)
            started.append((ns, name, address, _spawn_server(ns, name, state, host)))
        # the servers start in parallel: python is slow to start in the emulated VM
        servers = [_await_server(*args) for args in started]
        topo.reals, topo.fallback = servers[:-1], servers[-1]
    except BaseException:
        lab.close()
        raise
    return topo


class Healthd:
    """`healthd -c FILE` in the foreground in the director, logging JSON lines to a file."""

    def __init__(
        self, topo: Topology, config: Path, workdir: Path, *, log_name: str = "healthd.log"
    ) -> None:
        self.topo = topo
        self.config = config
        self.workdir = workdir
        self.log_path = workdir / log_name  # logfile= in every e2e config
        self.out_path = workdir / "healthd.out"  # the standard streams
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("HEALTHD_DRIVER", None)  # the real netlink driver
        env.update(HEALTHD_PIDDIR=str(self.workdir), HEALTHD_RUNDIR=str(self.workdir))
        return env

    def start(self) -> None:
        """Start healthd and wait until it has reconciled the table (daemon.started)."""
        self._spawn(
            self.topo.director.argv([sys.executable, "-m", "healthd", "-c", str(self.config)])
        )

    def _spawn(self, argv: list[str]) -> None:
        """Run ARGV (a healthd in the director) and wait until it has reconciled the table."""
        seen = len(self.events("daemon.started"))
        with self.out_path.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, env=self.env(), stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        wait_for(lambda: self._alive() and len(self.events("daemon.started")) > seen, "start")

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"healthd exited {self.proc.returncode}:\n{self.output()}")
        return True

    def signal(self, sig: signal.Signals) -> None:
        """Send SIG to the daemon."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = WAIT) -> int:
        """TERM the daemon and wait for it to exit; return its exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Kill the daemon if it still runs (test teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        """Return the tails of healthd's log and of its standard streams, for failure reports."""
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        out = self.out_path.read_text(errors="replace") if self.out_path.exists() else ""
        return f"{log[-5000:]}\n--- standard streams:\n{out[-4000:]}"

    def events(self, name: str | None = None) -> list[dict[str, object]]:
        """Return the log's events (all, or those named NAME), oldest first."""
        return [e for e in self._read_log() if name is None or e.get("event") == name]

    def _read_log(self) -> Iterator[dict[str, object]]:
        if not self.log_path.exists():
            return
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and line.endswith("}"):
                yield json.loads(line)


class Daemons:
    """The healthd processes one test started; close() stops them and resets their topologies."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Healthd] = []
        self.topologies: dict[int, Topology] = {}

    def watch(self, topo: Topology) -> None:
        """Reset TOPO at close() even when the test starts no healthd in it."""
        self.topologies.setdefault(id(topo), topo)

    def start(self, topo: Topology, text: str) -> Healthd:
        """Write TEXT to a config file, start healthd on it in TOPO and wait until it is up."""
        self.watch(topo)
        config = self.workdir / "e2e.cf"
        config.write_text(text)
        daemon = Healthd(topo, config, self.workdir)
        self.started.append(daemon)
        daemon.start()
        return daemon

    def close(self) -> None:
        """Kill the daemons; heal the servers, empty the table and drop the marks of each topology.

        What it prints (the daemons' output, the servers' stderr) pytest shows when a test failed.
        """
        for daemon in self.started:
            daemon.kill()
            print(f"--- healthd output ({daemon.workdir}):\n{daemon.output()}")
        for topo in self.topologies.values():
            print(f"--- servers' stderr:\n{topo.server_errors()[-3000:]}")
            topo.heal_all()
            topo.ipvsadm("-C")
            unmark_vip(topo)


# Check timing of every e2e config: a failed real leaves the table within
# CHECKINTERVAL x FAILURECOUNT + CHECKTIMEOUT (plus the emulated VM's allowance, in the tests).
CHECKINTERVAL = 1
CHECKTIMEOUT = 2
FAILURECOUNT = 1
RESYNC_INTERVAL = 2


# What the VM adds to a deadline measured from healthd's own log: TCG emulation runs the check,
# the reconcile and the netlink calls 15-25x slower than the host does.
ALLOWANCE = 3.0
DETECTION = CHECKINTERVAL * FAILURECOUNT + CHECKTIMEOUT  # seconds: the bound a user is promised


def stamp(event: dict[str, object]) -> float:
    """Return the wall-clock time of a log event (healthd logs ISO 8601 UTC timestamps)."""
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()


def table_is(topo: Topology, expected: list[str]) -> Callable[[], bool]:
    """Return a poll for wait_for: is the director's table EXPECTED (in any order)?"""
    return lambda: sorted(topo.table()) == sorted(expected)


def take_out(topo: Topology, daemon: Healthd, server: Server, failure: str) -> float:
    """Make SERVER fail its check; return the seconds until healthd's op took it out."""
    seen_ops, seen_down = len(daemon.events("ipvs.op_applied")), len(daemon.events("real.down"))
    began = time.time()
    if failure == "status 500":
        topo.fail(server)
    else:
        topo.set_body(server, "under maintenance")

    def ops() -> list[dict[str, object]]:
        applied = daemon.events("ipvs.op_applied")[seen_ops:]
        return [e for e in applied if server.endpoint in str(e["op"])]

    [op] = wait_for(ops, f"healthd taking {server.name} out after {failure}")
    [down] = daemon.events("real.down")[seen_down:]
    reason = "status_mismatch" if failure == "status 500" else "body_mismatch"
    assert (down["real"], down["reason"]) == (server.endpoint, reason)
    return stamp(op) - began


def config_text(
    topo: Topology,
    workdir: Path,
    *,
    weights: tuple[int, ...] = (1, 1, 1),
    scheduler: str = "rr",
    quiescent: bool = True,
    cleanstop: bool = True,
    fallback: bool = False,
) -> str:
    """Return an ldirectord.cf for the VIP over the reals, with the given settings."""
    yes_no = {True: "yes", False: "no"}
    reals = "".join(
        f"\treal={server.endpoint} masq {weight}\n"
        for server, weight in zip(topo.reals, weights, strict=True)
    )
    fb = f"\tfallback={topo.fallback.endpoint} masq\n" if fallback and topo.fallback else ""
    return (
        global_text(workdir) + f"\nvirtual={VIP}:{VPORT}\n"
        f"{reals}{fb}"
        "\tservice=http\n"
        '\trequest="ok.html"\n'
        '\treceive="ok"\n'
        f"\tscheduler={scheduler}\n"
        "\tprotocol=tcp\n"
        f"\tquiescent={yes_no[quiescent]}\n"
        f"\tcleanstop={yes_no[cleanstop]}\n"
    )


def global_text(workdir: Path, *, logfile: str = "healthd.log") -> str:
    """Return the global section of every e2e config: check timing and a JSON log in WORKDIR."""
    return (
        f"checkinterval={CHECKINTERVAL}\n"
        f"checktimeout={CHECKTIMEOUT}\n"
        f"failurecount={FAILURECOUNT}\n"
        f"resync_interval={RESYNC_INTERVAL}\n"
        f'logfile="{workdir}/{logfile}"\n'
    )


def block_text(
    virtual: str,
    reals: Sequence[Server],
    *,
    protocol: str = "tcp",
    quiescent: bool = True,
    real: str = "real",
) -> str:
    """Return a virtual block: VIRTUAL (`virtual6=[V6]:80`, `virtual=5`) over REALS, masq, rr.

    Each real is checked with http on its own port (request ok.html, receive "ok"); REAL is
    the reals' directive (`real6` in a `virtual6` block).
    """
    lines = "".join(f"\t{real}={server.endpoint} masq 1\n" for server in reals)
    return (
        f"\n{virtual}\n{lines}"
        "\tservice=http\n"
        '\trequest="ok.html"\n'
        '\treceive="ok"\n'
        "\tscheduler=rr\n"
        f"\tprotocol={protocol}\n"
        f"\tquiescent={'yes' if quiescent else 'no'}\n"
    )


def dest_line(
    server: Server, weight: int, vport: int = VPORT, *, service: str | None = None
) -> str:
    """Return the `ipvsadm -Sn` line of SERVER as a masq destination of the VIP.

    SERVICE names another service as ipvsadm does (`-t [2001:db8::10]:80`, `-f 5`).
    """
    service = service or f"-t {VIP}:{vport}"
    return f"-a {service} -r {server.endpoint} -m -w {weight}"


def service_line(scheduler: str = "rr", vport: int = VPORT, *, service: str | None = None) -> str:
    """Return the `ipvsadm -Sn` line of the VIP's service (or of SERVICE, as in dest_line)."""
    service = service or f"-t {VIP}:{vport}"
    return f"-A {service} -s {scheduler}"


MARK_TABLE = "healthd_e2e"  # the director's nftables table that mark_vip() fills


def mark_vip(topo: Topology, mark: int, port: int = VPORT) -> None:
    """Mark TCP packets to the VIP's PORT with MARK as they enter the director (nftables).

    The mark is set in prerouting, before IPVS looks for a service in local-in, as an
    administrator sets it for a firewall-mark virtual service (ldirectord's `virtual=MARK`).
    """
    family = "ip" if topo.addressing.version == 4 else "ip6"
    chain = f"{family} {MARK_TABLE} pre"
    ruleset = (
        f"add table {family} {MARK_TABLE}\n"
        f"add chain {chain} {{ type filter hook prerouting priority mangle; }}\n"
        f"add rule {chain} {family} daddr {topo.vip} tcp dport {port} meta mark set {mark}\n"
    )
    nft = subprocess.run(
        topo.director.argv(["nft", "-f", "-"]), input=ruleset, capture_output=True, text=True
    )
    assert nft.returncode == 0, f"nft: {nft.stderr.strip()}"


def unmark_vip(topo: Topology) -> None:
    """Remove what mark_vip() added (nothing to do when it added nothing)."""
    family = "ip" if topo.addressing.version == 4 else "ip6"
    topo.director.run(["nft", "delete", "table", family, MARK_TABLE], check=False)
