"""The IPVSDriver contract, run over FakeDriver everywhere and NetlinkDriver in the VM.

What one driver does here, the other must do too: same tables, same errno policy, same
refusals. In the kernel, every table is also read back through ipvsadm and the CLI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import sys
from collections.abc import Iterable, Sequence
from ipaddress import ip_address

import pytest

from healthd.errors import DriverError
from healthd.ipvs.driver import apply_all
from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.format import to_ipvsadm
from healthd.ipvs.types import (
    AddDest,
    AddService,
    Counters,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    Method,
    Op,
    Protocol,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)
from tests.contract.conftest import Harness, run

TCP4 = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
UDP4 = ServiceKey(Protocol.UDP, ip_address("192.0.2.10"), 53)
SCTP4 = ServiceKey(Protocol.SCTP, ip_address("192.0.2.10"), 3868)
TCP6 = ServiceKey(Protocol.TCP, ip_address("2001:db8::10"), 443)
UDP6 = ServiceKey(Protocol.UDP, ip_address("2001:db8::10"), 53)
SCTP6 = ServiceKey(Protocol.SCTP, ip_address("2001:db8::10"), 3868)
FWM4 = ServiceKey(Protocol.FWM, fwmark=5)
FWM6 = ServiceKey(Protocol.FWM, fwmark=6, family=6)
ALL_KEYS = (TCP4, UDP4, SCTP4, TCP6, UDP6, SCTP6, FWM4, FWM6)


def dest(addr: str, port: int = 80, method: Method = Method.ROUTE, weight: int = 1, **kw) -> Dest:
    return Dest(DestKey(ip_address(addr), port), weight=weight, method=method, **kw)


def table(*entries: tuple[Service, Sequence[Dest]]) -> Table:
    return Table({s.key: ServiceEntry(s, {d.key: d for d in ds}) for s, ds in entries})


def ops_for(t: Table) -> list[Op]:
    ops: list[Op] = []
    for entry in t.services.values():
        ops.append(AddService(entry.service))
        ops.extend(AddDest(entry.service.key, d) for d in entry.dests.values())
    return ops


async def program(h: Harness, ops: Iterable[Op]) -> Table:
    await apply_all(h.driver, ops)
    return await h.verify()


def _reals(key: ServiceKey) -> list[Dest]:
    """One destination per forwarding method, weight 0 included, in the service's family."""
    port = 0 if key.proto is Protocol.FWM else key.port
    base = "198.51.100." if key.family == 4 else "2001:db8:1::"
    return [
        dest(f"{base}1", port, Method.ROUTE, 1),
        dest(f"{base}2", port, Method.MASQ, 0),
        dest(f"{base}3", port, Method.TUNNEL, 65535),
    ]


@pytest.mark.parametrize("key", ALL_KEYS, ids=str)
async def test_every_service_kind_and_forwarding_method(h: Harness, key):
    want = table((Service(key, "wrr"), _reals(key)))
    assert await program(h, ops_for(want)) == want


async def test_whole_table_of_every_kind_at_once(h: Harness):
    flags = frozenset({"sh-fallback", "sh-port"})
    want = table(
        *((Service(k, "rr"), _reals(k)) for k in ALL_KEYS[:-2]),
        (
            Service(FWM4, "sh", persistent=20, netmask="255.255.0.0", sched_flags=flags),
            _reals(FWM4),
        ),
        (Service(FWM6, "wlc", persistent=20, netmask=64), _reals(FWM6)),
    )
    await apply_all(h.driver, ops_for(want))
    assert await h.verify(cli=True) == want


@pytest.mark.parametrize(
    "service",
    [
        Service(TCP4, "wlc", persistent=300),
        Service(TCP4, "wlc", persistent=1, netmask="255.255.255.0"),
        Service(UDP4, "lc", persistent=3600, netmask="255.255.0.0", one_packet=True),
        Service(TCP6, "rr", persistent=60, netmask=64),
        Service(UDP6, "rr", persistent=60, netmask=48, one_packet=True),
        Service(FWM4, "wrr", persistent=30, netmask="255.255.255.128"),
        Service(FWM6, "wrr", persistent=30, netmask=56),
        Service(FWM6, "wrr", persistent=30),
        Service(UDP4, "rr", one_packet=True),
        Service(FWM4, "rr", one_packet=True),
        Service(FWM6, "sh", persistent=15, netmask=64, one_packet=True),
    ],
    ids=str,
)
async def test_persistence_netmask_and_ops(h: Harness, service):
    want = table((service, []))
    got = await program(h, [AddService(service)])
    assert got == want
    assert got.services[service.key].service.netmask == service.netmask


@pytest.mark.parametrize(
    "service",
    [
        Service(TCP4, "sh", sched_flags=frozenset({"sh-fallback"})),
        Service(TCP4, "sh", sched_flags=frozenset({"sh-fallback", "sh-port"})),
        Service(TCP6, "mh", sched_flags=frozenset({"mh-port"})),
        Service(FWM6, "mh", persistent=10, sched_flags=frozenset({"mh-fallback", "mh-port"})),
        Service(UDP4, "wrr", sched_flags=frozenset({"flag-1", "flag-3"})),
    ],
    ids=str,
)
async def test_scheduler_flags(h: Harness, service):
    assert await program(h, [AddService(service)]) == table((service, []))


async def test_thresholds_and_weights(h: Harness):
    reals = [
        dest("198.51.100.1", weight=0, upper=100, lower=10),
        dest("198.51.100.2", weight=65535, upper=5, lower=5),
        dest("198.51.100.3", weight=7, upper=2**31 - 1, lower=0),
    ]
    want = table((Service(TCP4), reals))
    assert await program(h, ops_for(want)) == want


async def test_edit_destination(h: Harness):
    await program(h, [AddService(Service(TCP4)), AddDest(TCP4, dest("198.51.100.1"))])
    changed = dest("198.51.100.1", 80, Method.MASQ, 0, upper=9, lower=3)
    got = await program(h, [EditDest(TCP4, changed)])
    assert got == table((Service(TCP4), [changed]))


async def test_scheduler_change_is_an_edit_in_place(h: Harness):
    reals = [dest("198.51.100.1"), dest("198.51.100.2", method=Method.MASQ)]
    await program(h, ops_for(table((Service(TCP4, "rr"), reals))))
    steps = [
        Service(TCP4, "sh", persistent=600, sched_flags=frozenset({"sh-port"})),
        Service(TCP4, "wlc", persistent=60, netmask="255.255.255.0"),
        Service(TCP4, "rr"),
    ]
    for service in steps:
        got = await program(h, [EditService(service)])
        assert got == table((service, reals))  # the destinations were never lost


async def test_add_twice_edits_to_match(h: Harness):
    first = Service(TCP6, "rr")
    second = Service(TCP6, "sh", persistent=60, netmask=64, sched_flags=frozenset({"sh-port"}))
    d1 = dest("2001:db8:1::1", 443)
    d2 = dest("2001:db8:1::1", 443, Method.MASQ, 5, upper=3, lower=1)
    await program(h, [AddService(first), AddDest(TCP6, d1)])
    got = await program(h, [AddService(second), AddDest(TCP6, d2), AddDest(TCP6, d2)])
    assert got == table((second, [d2]))


async def test_delete_of_nothing_succeeds(h: Harness):
    await program(h, [AddService(Service(TCP4))])
    got = await program(
        h,
        [
            DelDest(TCP4, DestKey(ip_address("198.51.100.9"), 80)),
            DelDest(UDP6, DestKey(ip_address("2001:db8:1::9"), 53)),  # no service either
            DelService(FWM6),
            DelService(UDP4),
        ],
    )
    assert got == table((Service(TCP4), []))


async def test_edit_of_missing_entries_adds_them(h: Harness):
    d = dest("198.51.100.4", method=Method.MASQ, weight=3)
    got = await program(h, [EditService(Service(TCP4, "lc")), EditDest(TCP4, d)])
    assert got == table((Service(TCP4, "lc"), [d]))


async def test_deletes(h: Harness):
    reals = _reals(FWM6)
    await program(h, ops_for(table((Service(FWM6), reals), (Service(TCP4), []))))
    got = await program(h, [DelDest(FWM6, reals[0].key), DelService(TCP4)])
    assert got == table((Service(FWM6), reals[1:]))
    assert await program(h, [DelService(FWM6)]) == Table()


async def test_dump_round_trip(h: Harness):
    want = table(
        (Service(TCP4, "sh", persistent=30, sched_flags=frozenset({"sh-fallback"})), _reals(TCP4)),
        (Service(FWM6, "wrr", persistent=5, netmask=64), _reals(FWM6)),
        (Service(UDP4, "rr", one_packet=True), [dest("198.51.100.7", 53, upper=4, lower=2)]),
    )
    dumped = await program(h, ops_for(want))
    again = FakeDriver()
    await apply_all(again, ops_for(dumped))
    assert await again.dump() == dumped == want
    if h.netns is not None:
        # the ipvsadm form restores the same table in another namespace (no thresholds:
        # ipvsadm -S does not print them)
        other = f"{h.netns}-r"
        await run("ip", "netns", "add", other)
        await run("ip", "-n", other, "link", "set", "lo", "up")
        try:
            proc = await run(
                "sh", "-c", f"printf %s '{to_ipvsadm(dumped)}' | ip netns exec {other} ipvsadm -R"
            )
            assert proc[0] == 0
            _, restored, _ = await run("ip", "netns", "exec", other, "ipvsadm", "-Sn")
            assert restored == to_ipvsadm(dumped)
        finally:
            await run("ip", "netns", "del", other)


# --- raw kernel answers and refusals --------------------------------------------------------


async def _raw_errno(h: Harness, op: Op) -> int:
    with pytest.raises(DriverError) as info:
        await h.driver.apply_raw(op)  # type: ignore[attr-defined]
    return info.value.errno


async def test_raw_answers_match_the_kernel(h: Harness):
    d = dest("198.51.100.1")
    assert await _raw_errno(h, AddDest(TCP4, d)) == errno.ESRCH
    assert await _raw_errno(h, EditService(Service(TCP4))) == errno.ESRCH
    assert await _raw_errno(h, DelService(TCP4)) == errno.ESRCH
    await h.driver.apply_raw(AddService(Service(TCP4)))  # type: ignore[attr-defined]
    assert await _raw_errno(h, AddService(Service(TCP4))) == errno.EEXIST
    assert await _raw_errno(h, EditDest(TCP4, d)) == errno.ENOENT
    assert await _raw_errno(h, DelDest(TCP4, d.key)) == errno.ENOENT
    await h.driver.apply_raw(AddDest(TCP4, d))  # type: ignore[attr-defined]
    assert await _raw_errno(h, AddDest(TCP4, d)) == errno.EEXIST
    assert await h.verify() == table((Service(TCP4), [d]))


async def test_destination_needs_its_service(h: Harness):
    for op in (AddDest(TCP4, dest("198.51.100.1")), EditDest(FWM6, _reals(FWM6)[0])):
        with pytest.raises(DriverError) as info:
            await h.driver.apply(op)
        assert info.value.errno == errno.ENOENT
        assert str(info.value).endswith("does not exist")
    assert await h.verify() == Table()


async def test_unknown_scheduler_is_one_clear_line(h: Harness):
    with pytest.raises(DriverError) as info:
        await h.driver.apply(AddService(Service(TCP4, "xyz")))
    assert info.value.errno == errno.ENOENT
    assert str(info.value) == (
        "add-service tcp/192.0.2.10:80 sched=xyz: "
        "scheduler 'xyz' is not available: kernel module ip_vs_xyz not loaded"
    )
    await h.driver.apply(AddService(Service(TCP4, "rr")))
    with pytest.raises(DriverError, match="kernel module ip_vs_xyz not loaded"):
        await h.driver.apply(EditService(Service(TCP4, "xyz")))
    assert await h.verify() == table((Service(TCP4, "rr"), []))


REFUSED = [
    (AddDest(TCP4, dest("198.51.100.1", weight=-1)), errno.ERANGE),
    (AddDest(TCP4, dest("198.51.100.1", upper=5, lower=6)), errno.ERANGE),
    (AddDest(TCP4, dest("198.51.100.1", upper=0, lower=1)), errno.ERANGE),
    (AddDest(TCP4, dest("2001:db8:1::1", method=Method.MASQ)), errno.EINVAL),
    (AddDest(TCP4, dest("2001:db8:1::1", method=Method.ROUTE)), errno.EINVAL),
    (AddDest(FWM6, dest("198.51.100.1", 0, Method.MASQ)), errno.EINVAL),
    (AddDest(TCP4, dest("224.0.0.5")), errno.EINVAL),
    (AddService(Service(TCP6, persistent=60, netmask=0)), errno.EINVAL),
    (AddService(Service(TCP6, persistent=60, netmask=129)), errno.EINVAL),
]


@pytest.mark.parametrize(("op", "err"), REFUSED, ids=[str(op) for op, _ in REFUSED])
async def test_values_the_kernel_refuses(h: Harness, op, err):
    if not isinstance(op, AddService):
        await h.driver.apply(AddService(Service(op.service)))
        await h.driver.apply(AddService(Service(FWM6)))
    before = await h.verify()
    with pytest.raises(DriverError) as info:
        await h.driver.apply(op)
    assert info.value.errno == err
    assert await h.verify() == before


@pytest.mark.kernel
@pytest.mark.parametrize(("op", "err"), REFUSED, ids=[str(op) for op, _ in REFUSED])
async def test_checks_agree_with_the_kernel_unchecked(kernel: Harness, op, err):
    """Sent without healthd's own checks, the kernel refuses with the same errno."""
    from healthd.ipvs.netlink import NetlinkError, encode

    driver = kernel.driver
    if not isinstance(op, AddService):
        await driver.apply(AddService(Service(op.service)))
        await driver.apply(AddService(Service(FWM6)))
    if isinstance(op, AddDest) and op.dest.weight < 0:
        # the attribute is a u32; the kernel reads it into an int
        op = AddDest(op.service, Dest(op.dest.key, op.dest.weight % 2**32, op.dest.method))
    with pytest.raises(NetlinkError) as info:
        await driver._request(*encode(op))  # type: ignore[attr-defined]
    assert info.value.code == err


@pytest.mark.kernel
async def test_kernel_accepts_the_mixed_family_tunnel(kernel: Harness):
    d6 = dest("2001:db8:1::1", method=Method.TUNNEL)
    d4 = dest("198.51.100.1", 0, method=Method.TUNNEL)
    got = await program(
        kernel,
        [
            AddService(Service(TCP4)),
            AddDest(TCP4, d6),
            AddService(Service(FWM6)),
            AddDest(FWM6, d4),
        ],
    )
    assert got == table((Service(TCP4), [d6]), (Service(FWM6), [d4]))


@pytest.mark.kernel
async def test_without_cap_net_admin_is_one_clear_line(kernel: Harness):
    rc, out, err = await kernel.in_netns(
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        *_healthd("ipvs", "dump"),
        check=False,
    )
    assert (rc, out) == (1, "")
    assert err == "healthd: permission denied: healthd needs CAP_NET_ADMIN\n"


def _healthd(*args: str) -> list[str]:
    from tests.contract.conftest import HEALTHD

    return [HEALTHD, *args]


# --- counters: real traffic through a NAT service, read back against ipvsadm --------------

BACKEND = """
import socket, sys
srv = socket.create_server((sys.argv[1], 0))
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
conn.sendall(b"hello " + conn.recv(100))
conn.close()
"""
CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as c:
    c.sendall(b"world")
    print(c.recv(100).decode())
"""


def _stats_rows(text: str) -> list[tuple[str, Counters]]:
    """Return (endpoint, counters) per row of `ipvsadm -Ln --stats --exact`, in its order."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 7 and fields[0] in ("TCP", "->") and fields[2].isdigit():
            conns, inpkts, outpkts, inbytes, outbytes = map(int, fields[2:])
            rows.append((fields[1], Counters(0, 0, 0, conns, inpkts, outpkts, inbytes, outbytes)))
    return rows


def _dumped_rows(t: Table) -> list[tuple[str, Counters]]:
    """Return the same rows from a dump (connection gauges left out: ipvsadm shows them apart)."""
    rows = []
    for entry in t.services.values():
        assert entry.counters is not None
        rows.append((str(entry.service.key).split("/", 1)[1], entry.counters))
        for key in entry.dests:
            c = entry.dest_counters[key]
            rows.append((str(key), dataclasses.replace(c, active_conns=0, inactive_conns=0)))
    return rows


@pytest.mark.kernel
async def test_dump_counters_match_ipvsadm_after_real_traffic():
    """One TCP connection through a masq service shows in the dump's counters as in ipvsadm's,
    and an edit of the service in place keeps them."""
    from healthd.ipvs.netlink import NetlinkDriver
    from tests.contract.conftest import require_kernel
    from tests.kernel.netns import Lab

    require_kernel()
    vip = "203.0.113.10"
    with Lab(prefix="ctr") as lab:
        client, director, backend = lab.netns("cl"), lab.netns("lb"), lab.netns("be")
        lab.veth(client, "203.0.113.2/24", director, "203.0.113.1/24")
        lab.veth(director, "198.51.100.1/24", backend, "198.51.100.11/24")
        lab.dummy(director, f"{vip}/32")
        backend.ip("route", "add", "default", "via", "198.51.100.1")
        director.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        server = backend.popen([sys.executable, "-c", BACKEND, "198.51.100.11"])
        assert server.stdout is not None
        port = int(server.stdout.readline())
        key = ServiceKey(Protocol.TCP, ip_address(vip), port)
        real = dest("198.51.100.11", port, Method.MASQ, 1)
        driver = NetlinkDriver(netns=director.name)
        try:
            await apply_all(driver, [AddService(Service(key, "rr")), AddDest(key, real)])
            reply = client.run([sys.executable, "-c", CLIENT, vip, str(port)]).stdout
            assert reply.strip() == "hello world"
            # kernel: the summed counters follow the 2 s rate estimator, so wait for them
            for _ in range(120):
                got = await driver.dump()
                listed = director.run(["ipvsadm", "-Ln", "--stats", "--exact"]).stdout
                counters = got.services[key].counters
                settled = counters is not None and counters.outpkts >= 2
                if settled and _stats_rows(listed) == _dumped_rows(got):
                    break
                await asyncio.sleep(0.5)
            assert _dumped_rows(got) == _stats_rows(listed)
            # an edit in place keeps the kernel's service object, so its counters go on; a
            # delete and re-add would start a new service from zero
            changed = Service(key, "wlc", persistent=60)
            await driver.apply(EditService(changed))
            edited = (await driver.dump()).services[key]
        finally:
            await driver.aclose()
    counters = got.services[key].counters
    assert counters is not None
    assert counters.conns == 1
    assert counters.inpkts >= 3  # handshake, data, close
    assert counters.outpkts >= 2
    assert counters.inbytes > counters.inpkts * 40  # IP + TCP headers at least
    gauges = got.services[key].dest_counters[real.key]
    assert gauges.active_conns + gauges.inactive_conns == 1  # the connection is still held
    assert edited.service == changed
    assert edited.counters is not None
    assert edited.counters.conns == 1  # a re-created service would count 0
    assert edited.counters.inpkts >= counters.inpkts
