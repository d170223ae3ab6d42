"""Smoke test of the test VM: ip_vs and its schedulers, netns and veth, the shared checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kernel.netns import Lab, NetnsError, ip

pytestmark = pytest.mark.kernel
in_vm = pytest.mark.skipif(not os.environ.get("HEALTHD_VM"), reason="only in the test VM")

# Every IPVS scheduler Debian's kernel ships as a module.
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh")
SERVER = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
srv = socket.create_server((sys.argv[1], 0), family=family)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
conn.sendall(b"hello " + conn.recv(100))
"""
CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as c:
    c.sendall(b"world")
    print(c.recv(100).decode())
"""


def test_ip_vs_is_loaded() -> None:
    assert Path("/proc/net/ip_vs").exists()
    assert Path("/sys/module/ip_vs").is_dir()


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_scheduler_module_loads_and_works(lab: Lab, scheduler: str) -> None:
    assert Path(f"/sys/module/ip_vs_{scheduler}").is_dir()
    ns = lab.netns("sched")
    ns.run(["ipvsadm", "-A", "-t", "192.0.2.1:80", "-s", scheduler])
    assert f"-A -t 192.0.2.1:80 -s {scheduler}" in ns.run(["ipvsadm", "-Sn"]).stdout


@in_vm
def test_no_scheduler_module_is_left_out() -> None:
    ipvs = Path(os.environ["HEALTHD_VM_MODULES"]) / "kernel/net/netfilter/ipvs"
    shipped = {p.name.split(".ko")[0].removeprefix("ip_vs_") for p in ipvs.glob("ip_vs_*.ko*")}
    assert shipped - {"ftp", "pe_sip"} == set(SCHEDULERS)


def test_ipvsadm_in_a_fresh_netns_leaves_the_vm_table_alone(lab: Lab) -> None:
    ns = lab.netns("ipvs")
    ns.run(["ipvsadm", "-A", "-t", "192.0.2.1:80", "-s", "rr"])
    ns.run(["ipvsadm", "-a", "-t", "192.0.2.1:80", "-r", "198.51.100.2:8080", "-m", "-w", "3"])
    saved = ns.run(["ipvsadm", "-Sn"]).stdout.splitlines()
    assert saved == ["-A -t 192.0.2.1:80 -s rr", "-a -t 192.0.2.1:80 -r 198.51.100.2:8080 -m -w 3"]
    outside = subprocess.run(["ipvsadm", "-Sn"], capture_output=True, text=True, check=True)
    assert "192.0.2.1" not in outside.stdout


@pytest.mark.parametrize(
    ("server", "client"), [("192.0.2.2/24", "192.0.2.1/24"), ("2001:db8::2/64", "2001:db8::1/64")]
)
def test_veth_pair_carries_tcp_between_namespaces(lab: Lab, server: str, client: str) -> None:
    backend, director = lab.netns("be"), lab.netns("lb")
    lab.veth(director, client, backend, server)
    address = server.split("/")[0]
    proc = backend.popen([sys.executable, "-c", SERVER, address])
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    reply = director.run([sys.executable, "-c", CLIENT, address, port]).stdout
    assert reply.strip() == "hello world"


def test_dummy_interface_holds_addresses(lab: Lab) -> None:
    ns = lab.netns("vip")
    dev = lab.dummy(ns, "203.0.113.10/32", "2001:db8:1::10/128")
    shown = ns.ip("-o", "addr", "show", "dev", dev)
    assert "203.0.113.10/32" in shown
    assert "2001:db8:1::10/128" in shown


def test_lab_close_deletes_its_namespaces() -> None:
    lab = Lab(prefix="close")
    names = [lab.netns("a").name, lab.netns("b").name]
    assert all(name in ip("netns", "list") for name in names)
    lab.close()
    listed = ip("netns", "list")
    assert not any(name in listed for name in names)
    with pytest.raises(NetnsError, match="ip link show dev nosuchdev"):
        ip("link", "show", "dev", "nosuchdev")


@in_vm
def test_checkout_is_shared_writable_at_the_host_path(pytestconfig: pytest.Config) -> None:
    checkout = Path(os.environ["HEALTHD_VM_CHECKOUT"])
    assert pytestconfig.rootpath == checkout
    assert Path(__file__).resolve().is_relative_to(checkout)
    assert Path(sys.prefix).is_relative_to(checkout)  # the checkout's .venv
    mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    assert [m[2] for m in mounts if m[1] == str(checkout)] == ["9p"]
    probe = checkout / f".vm-write-probe-{os.getpid()}"
    probe.write_text("ok")
    try:
        assert probe.read_text() == "ok"
    finally:
        probe.unlink()
