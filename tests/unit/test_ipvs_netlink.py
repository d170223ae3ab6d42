"""NetlinkDriver wire format and reply handling, checked offline.

The encoder and decoder (healthd.ipvs._wire, plain struct) are cross-checked against
pyroute2's independent IPVS message classes in both directions: what we encode, pyroute2
decodes to the same values, and what pyroute2 encodes (as the kernel's replies), we decode
to the same Service and Dest; services and dests, IPv4, IPv6 and firewall marks. The
request/reply loop runs over a datagram socket pair fed with hand-built netlink replies.
The kernel side is proved by tests/contract in the VM.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from ipaddress import ip_address

import pytest
from pyroute2.netlink.generic import ipvs as genl

from healthd.errors import DriverError
from healthd.ipvs import _wire as w
from healthd.ipvs import netlink
from healthd.ipvs.driver import IPVSDriver
from healthd.ipvs.netlink import NetlinkError
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
    Protocol,
    Service,
    ServiceKey,
)

_: IPVSDriver = netlink.NetlinkDriver()  # typed as the protocol (mypy itself skips tests/)

V4 = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
V6 = ServiceKey(Protocol.UDP, ip_address("2001:db8::10"), 53)
FWM6 = ServiceKey(Protocol.FWM, fwmark=9, family=6)
SCTP = ServiceKey(Protocol.SCTP, ip_address("192.0.2.10"), 3868)
SERVICES = [
    Service(V4, "wrr"),
    Service(
        V4,
        "sh",
        persistent=300,
        netmask="255.255.255.0",
        sched_flags=frozenset({"sh-fallback", "sh-port"}),
    ),
    Service(V6, "rr", persistent=60, netmask=64, one_packet=True),
    Service(FWM6, "mh", persistent=10, netmask=48, sched_flags=frozenset({"mh-port"})),
    Service(ServiceKey(Protocol.FWM, fwmark=1), "lc", persistent=5),
    Service(SCTP, "wlc", sched_flags=frozenset({"flag-3"})),
]


def _pyroute2(op):
    """Encode op with healthd's encoder and decode it with pyroute2's codec."""
    cmd, payload = netlink.encode(op)
    raw = w.message(0x20, cmd, payload, 1, w.NLM_F_REQUEST | w.NLM_F_ACK)
    msg = genl.ipvsmsg(raw)
    msg.decode()
    assert msg["cmd"] == cmd
    assert msg["version"] == 1
    return cmd, msg


def _attr_bytes(payload: bytes, kind: int, nested: int = w.ATTR_SERVICE) -> bytes:
    return w.attrs(w.attrs(payload)[nested])[kind]


@pytest.mark.parametrize("service", SERVICES, ids=str)
@pytest.mark.parametrize("kind", [AddService, EditService])
def test_service_round_trip(service, kind):
    cmd, msg = _pyroute2(kind(service))
    assert cmd == (genl.IPVS_CMD_NEW_SERVICE if kind is AddService else genl.IPVS_CMD_SET_SERVICE)
    nla = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
    assert nla.get_attr("IPVS_SVC_ATTR_SCHED_NAME") == service.scheduler
    assert nla.get_attr("IPVS_SVC_ATTR_AF") == (10 if service.key.family == 6 else 2)
    if service.key.address is not None:
        assert ip_address(nla.get_attr("IPVS_SVC_ATTR_ADDR")) == service.key.address
        assert nla.get_attr("IPVS_SVC_ATTR_PORT") == service.key.port
    _cmd, payload = netlink.encode(kind(service))
    decoded, counters = netlink.decode_service(w.attrs(payload)[w.ATTR_SERVICE])
    assert decoded == service
    assert counters == Counters()


def test_fwmark_key_has_no_address_port_or_protocol():
    _cmd, msg = _pyroute2(DelService(FWM6))
    attrs = dict(msg.get_attr("IPVS_CMD_ATTR_SERVICE")["attrs"])
    assert attrs == {"IPVS_SVC_ATTR_AF": 10, "IPVS_SVC_ATTR_FWMARK": 9}


def test_ipv6_netmask_is_a_host_order_prefix_length():
    def netmask(service):
        return _attr_bytes(netlink.encode(AddService(service))[1], w.SVC_NETMASK)

    assert netmask(Service(V6, persistent=60, netmask=64)) == struct.pack("=I", 64)
    v4 = Service(V4, persistent=60, netmask="255.255.240.0")
    assert netmask(v4) == bytes([255, 255, 240, 0])
    assert netmask(Service(V6)) == struct.pack("=I", 128)


def test_addresses_travel_as_16_bytes_and_ports_in_network_order():
    payload = netlink.encode(AddService(Service(V4)))[1]
    assert _attr_bytes(payload, w.SVC_ADDR) == bytes([192, 0, 2, 10]) + bytes(12)
    assert _attr_bytes(payload, w.SVC_PORT) == b"\x00\x50"


def test_flags_carry_persistence_ops_and_scheduler_bits_with_full_mask():
    s = Service(V6, "sh", persistent=60, one_packet=True, sched_flags=frozenset({"sh-port"}))
    _cmd, msg = _pyroute2(AddService(s))
    svc = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
    assert svc.get_attr("IPVS_SVC_ATTR_FLAGS")["flags"] == 0x01 | 0x04 | 0x10
    assert svc.get_attr("IPVS_SVC_ATTR_FLAGS")["mask"] == 0xFFFFFFFF
    assert svc.get_attr("IPVS_SVC_ATTR_TIMEOUT") == 60


@pytest.mark.parametrize(
    ("method", "number"), [(Method.MASQ, 0), (Method.TUNNEL, 2), (Method.ROUTE, 3)]
)
@pytest.mark.parametrize("kind", [AddDest, EditDest])
def test_dest_round_trip(method, number, kind):
    dest = Dest(DestKey(ip_address("2001:db8::7"), 8080), weight=0, method=method, upper=7, lower=3)
    cmd, msg = _pyroute2(kind(V6, dest))
    assert cmd == (genl.IPVS_CMD_NEW_DEST if kind is AddDest else genl.IPVS_CMD_SET_DEST)
    nla = msg.get_attr("IPVS_CMD_ATTR_DEST")
    assert nla.get_attr("IPVS_DEST_ATTR_FWD_METHOD") == number
    assert nla.get_attr("IPVS_DEST_ATTR_ADDR_FAMILY") == 10
    assert nla.get_attr("IPVS_DEST_ATTR_PORT") == 8080
    assert (nla.get_attr("IPVS_DEST_ATTR_U_THRESH"), nla.get_attr("IPVS_DEST_ATTR_L_THRESH")) == (
        7,
        3,
    )
    nested = w.attrs(netlink.encode(kind(V6, dest))[1])[w.ATTR_DEST]
    decoded, _counters = netlink.decode_dest(nested)
    assert decoded == dest


def test_del_dest_sends_only_the_keys():
    cmd, msg = _pyroute2(DelDest(V4, DestKey(ip_address("198.51.100.3"), 80)))
    assert cmd == genl.IPVS_CMD_DEL_DEST
    dest = dict(msg.get_attr("IPVS_CMD_ATTR_DEST")["attrs"])
    assert dest == {
        "IPVS_DEST_ATTR_ADDR_FAMILY": 2,
        "IPVS_DEST_ATTR_ADDR": "198.51.100.3",
        "IPVS_DEST_ATTR_PORT": 80,
    }
    assert dict(msg.get_attr("IPVS_CMD_ATTR_SERVICE")["attrs"])["IPVS_SVC_ATTR_PROTOCOL"] == 6


# --- both directions, value by value ------------------------------------------------------

_AF = {4: 2, 6: 10}
_PROTO = {Protocol.TCP: 6, Protocol.UDP: 17, Protocol.SCTP: 132}
_METHOD = {Method.MASQ: 0, Method.TUNNEL: 2, Method.ROUTE: 3}

# each service with the attributes the kernel holds for it, as pyroute2 names them: the key,
# scheduler, flags (persistent 0x1, one-packet 0x4, scheduler flags 0x8 up), timeout, netmask
# (IPv6: a prefix length in host order, which pyroute2's ip4addr shows as its bytes)
_V6_PLEN = {
    64: socket.inet_ntoa(struct.pack("=I", 64)),
    128: socket.inet_ntoa(struct.pack("=I", 128)),
}
CASES = [
    (
        Service(V4, "wrr"),
        {"SCHED_NAME": "wrr", "FLAGS": 0, "TIMEOUT": 0, "NETMASK": "255.255.255.255"},
    ),
    (
        Service(
            V4, "sh", persistent=300, netmask="255.255.255.0", sched_flags=frozenset({"sh-port"})
        ),
        {"SCHED_NAME": "sh", "FLAGS": 0x1 | 0x10, "TIMEOUT": 300, "NETMASK": "255.255.255.0"},
    ),
    (
        Service(V6, "rr", persistent=60, netmask=64, one_packet=True),
        {"SCHED_NAME": "rr", "FLAGS": 0x1 | 0x4, "TIMEOUT": 60, "NETMASK": _V6_PLEN[64]},
    ),
    (
        Service(ServiceKey(Protocol.FWM, fwmark=1), "lc", persistent=5),
        {"SCHED_NAME": "lc", "FLAGS": 0x1, "TIMEOUT": 5, "NETMASK": "255.255.255.255"},
    ),
    (
        Service(FWM6, "mh", sched_flags=frozenset({"mh-port"})),
        {"SCHED_NAME": "mh", "FLAGS": 0x10, "TIMEOUT": 0, "NETMASK": _V6_PLEN[128]},
    ),
]
DESTS = [
    (V4, Dest(DestKey(ip_address("198.51.100.3"), 8080), 5, Method.MASQ, upper=100, lower=10)),
    (V6, Dest(DestKey(ip_address("2001:db8::7"), 53), 0, Method.TUNNEL)),
    (FWM6, Dest(DestKey(ip_address("2001:db8::8"), 0), 65535, Method.ROUTE)),
    (
        ServiceKey(Protocol.FWM, fwmark=1),
        Dest(DestKey(ip_address("198.51.100.4"), 0), 1, Method.ROUTE),
    ),
]


def _key_attrs(key: ServiceKey) -> dict[str, object]:
    """Return a service key's attributes as pyroute2 names them."""
    if key.proto is Protocol.FWM:
        return {"AF": _AF[key.family], "FWMARK": key.fwmark}
    return {
        "AF": _AF[key.family],
        "PROTOCOL": _PROTO[key.proto],
        "ADDR": str(key.address),
        "PORT": key.port,
    }


def _named(nla, prefix: str) -> dict[str, object]:
    """Return pyroute2's decoded attributes without their prefix; flags as their bits."""
    out = {}
    for name, value in nla["attrs"]:
        short = name.removeprefix(prefix)
        out[short] = value["flags"] if short == "FLAGS" else value
    return out


@pytest.mark.parametrize(("service", "want"), CASES, ids=[str(s) for s, _ in CASES])
def test_pyroute2_decodes_our_services(service, want):
    _cmd, msg = _pyroute2(AddService(service))
    nla = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
    assert _named(nla, "IPVS_SVC_ATTR_") == {**_key_attrs(service.key), **want}
    assert nla.get_attr("IPVS_SVC_ATTR_FLAGS")["mask"] == 0xFFFFFFFF


def _pyroute2_reply(attrs: list[tuple[str, object]], nested: str) -> bytes:
    """Return a reply body (after nlmsghdr) as pyroute2 encodes it, one nested attribute."""
    msg = genl.ipvsmsg()
    msg["cmd"] = genl.IPVS_CMD_NEW_SERVICE if nested == "SERVICE" else genl.IPVS_CMD_NEW_DEST
    msg["version"] = 1
    msg["attrs"] = [(f"IPVS_CMD_ATTR_{nested}", {"attrs": attrs})]
    msg["header"]["type"] = 0x20
    msg.encode()
    return bytes(msg.data)[16:]


@pytest.mark.parametrize(("service", "want"), CASES, ids=[str(s) for s, _ in CASES])
def test_we_decode_pyroute2s_services(service, want):
    attrs = {**_key_attrs(service.key), **want}
    attrs["FLAGS"] = {"flags": want["FLAGS"], "mask": 0xFFFFFFFF}
    stats = {"attrs": [(f"IPVS_STATS_ATTR_{n}", v) for n, v in _STATS]}
    pairs = [(f"IPVS_SVC_ATTR_{k}", v) for k, v in attrs.items()]
    body = _pyroute2_reply([*pairs, ("IPVS_SVC_ATTR_STATS64", stats)], "SERVICE")
    nested = w.reply_attr(body, w.ATTR_SERVICE)
    assert nested is not None
    decoded, counters = netlink.decode_service(nested)
    assert decoded == service
    assert counters == Counters(0, 0, 0, 7, 2**33, 9, 2**40, 11)


def _dest_attrs(dest: Dest) -> dict[str, object]:
    return {
        "ADDR_FAMILY": _AF[dest.key.address.version],
        "ADDR": str(dest.key.address),
        "PORT": dest.key.port,
        "FWD_METHOD": _METHOD[dest.method],
        "WEIGHT": dest.weight,
        "U_THRESH": dest.upper,
        "L_THRESH": dest.lower,
    }


@pytest.mark.parametrize(("key", "dest"), DESTS, ids=[f"{k} {d.key}" for k, d in DESTS])
def test_pyroute2_decodes_our_dests(key, dest):
    _cmd, msg = _pyroute2(AddDest(key, dest))
    assert _named(msg.get_attr("IPVS_CMD_ATTR_DEST"), "IPVS_DEST_ATTR_") == _dest_attrs(dest)
    assert _named(msg.get_attr("IPVS_CMD_ATTR_SERVICE"), "IPVS_SVC_ATTR_") == _key_attrs(key)


@pytest.mark.parametrize(("key", "dest"), DESTS, ids=[f"{k} {d.key}" for k, d in DESTS])
def test_we_decode_pyroute2s_dests(key, dest):
    attrs = [(f"IPVS_DEST_ATTR_{k}", v) for k, v in _dest_attrs(dest).items()]
    attrs += [("IPVS_DEST_ATTR_ACTIVE_CONNS", 3), ("IPVS_DEST_ATTR_INACT_CONNS", 2)]
    nested = w.reply_attr(_pyroute2_reply(attrs, "DEST"), w.ATTR_DEST)
    assert nested is not None
    decoded, counters = netlink.decode_dest(nested, key.family)
    assert decoded == dest
    assert counters == Counters(active_conns=3, inactive_conns=2)


def _kernel_dest_reply() -> bytes:
    """Return a GET_DEST reply body as pyroute2 encodes one, with 64-bit counters."""
    msg = genl.ipvsmsg()
    msg["cmd"] = genl.IPVS_CMD_NEW_DEST
    msg["version"] = 1
    stats = {"attrs": [(f"IPVS_STATS_ATTR_{n}", v) for n, v in _STATS]}
    msg["attrs"] = [
        (
            "IPVS_CMD_ATTR_DEST",
            {
                "attrs": [
                    ("IPVS_DEST_ATTR_ADDR_FAMILY", 2),
                    ("IPVS_DEST_ATTR_ADDR", "203.0.113.9"),
                    ("IPVS_DEST_ATTR_PORT", 8443),
                    ("IPVS_DEST_ATTR_FWD_METHOD", 2 | 0x100),  # flag bits above the method
                    ("IPVS_DEST_ATTR_WEIGHT", 65535),
                    ("IPVS_DEST_ATTR_U_THRESH", 0),
                    ("IPVS_DEST_ATTR_L_THRESH", 0),
                    ("IPVS_DEST_ATTR_ACTIVE_CONNS", 4),
                    ("IPVS_DEST_ATTR_INACT_CONNS", 5),
                    ("IPVS_DEST_ATTR_PERSIST_CONNS", 6),
                    ("IPVS_DEST_ATTR_STATS64", stats),
                ]
            },
        )
    ]
    msg["header"]["type"] = 0x20
    msg.encode()
    return bytes(msg.data)[16:]


_STATS = [("CONNS", 7), ("INPKTS", 2**33), ("OUTPKTS", 9), ("INBYTES", 2**40), ("OUTBYTES", 11)]


def test_dest_reply_decodes_with_64_bit_counters():
    nested = w.reply_attr(_kernel_dest_reply(), w.ATTR_DEST)
    assert nested is not None
    dest, counters = netlink.decode_dest(nested)
    assert dest == Dest(DestKey(ip_address("203.0.113.9"), 8443), 65535, Method.TUNNEL)
    assert counters == Counters(4, 5, 6, 7, 2**33, 9, 2**40, 11)


# --- the request/reply loop over a socket pair ------------------------------------------------


def _nlmsg(kind: int, seq: int, body: bytes, flags: int = 0) -> bytes:
    head = struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0)
    return head + body + b"\0" * (-len(body) % 4)


def _err(seq: int, code: int) -> bytes:
    return _nlmsg(w.NLMSG_ERROR, seq, struct.pack("=i", -code) + bytes(16))


@pytest.fixture
def pair():
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    yield netlink._Channel(ours), kernel
    ours.close()
    kernel.close()


async def test_replies_skip_other_requests_and_end_at_done(pair):
    chan, kernel = pair
    body = _kernel_dest_reply()
    kernel.send(_err(6, 0) + _nlmsg(0x20, 7, body, w.NLM_F_MULTI))  # a stale ack first
    kernel.send(_nlmsg(0x20, 7, body, w.NLM_F_MULTI) + _nlmsg(w.NLMSG_DONE, 7, bytes(4)))
    assert await chan.replies(7) == [body, body]


async def test_an_ack_ends_a_request_and_an_error_raises_its_errno(pair):
    chan, kernel = pair
    kernel.send(_err(3, 0))
    assert await chan.replies(3) == []
    kernel.send(_err(4, errno.EEXIST))
    with pytest.raises(NetlinkError) as info:
        await chan.replies(4)
    assert info.value.code == errno.EEXIST


async def test_request_frames_the_command_with_its_own_sequence_number(pair):
    chan, kernel = pair
    chan.family = 0x21
    kernel.send(_err(1, 0))
    payload = netlink.encode(DelService(V4))[1]
    assert await chan.request(w.CMD_DEL_SERVICE, payload) == []
    sent = kernel.recv(4096)
    assert sent == w.message(0x21, w.CMD_DEL_SERVICE, payload, 1, w.NLM_F_REQUEST | w.NLM_F_ACK)
    size, kind, flags, seq, _pid = struct.unpack_from("=IHHII", sent)
    assert (size, kind, flags, seq) == (len(sent), 0x21, 0x05, 1)
    assert sent[16:18] == bytes([w.CMD_DEL_SERVICE, 1])


async def test_family_is_resolved_from_the_controller_reply(pair):
    chan, kernel = pair
    reply = struct.pack("=BBH", 1, 2, 0) + w.attr(w.CTRL_ATTR_FAMILY_ID, struct.pack("=H", 0x2A))
    kernel.send(_nlmsg(w.GENL_ID_CTRL, 1, reply) + _err(1, 0))
    await chan.resolve()
    assert chan.family == 0x2A
    request = kernel.recv(4096)
    assert b"IPVS\0" in request
    assert struct.unpack_from("=H", request, 4)[0] == w.GENL_ID_CTRL


def test_the_family_request_is_what_pyroute2_reads_as_getfamily_for_ipvs():
    from pyroute2.netlink import CTRL_CMD_GETFAMILY, GENL_ID_CTRL, ctrlmsg

    msg = ctrlmsg(w.family_request(9))
    msg.decode()
    assert (msg["header"]["type"], msg["header"]["sequence_number"]) == (GENL_ID_CTRL, 9)
    assert msg["cmd"] == CTRL_CMD_GETFAMILY
    assert msg.get_attr("CTRL_ATTR_FAMILY_NAME") == "IPVS"


def test_the_family_id_is_read_from_a_reply_pyroute2_encodes():
    from pyroute2.netlink import CTRL_CMD_NEWFAMILY, GENL_ID_CTRL, ctrlmsg

    msg = ctrlmsg()
    msg["cmd"] = CTRL_CMD_NEWFAMILY
    msg["version"] = 2
    msg["attrs"] = [["CTRL_ATTR_FAMILY_NAME", "IPVS"], ["CTRL_ATTR_FAMILY_ID", 0x2B]]
    msg["header"]["type"] = GENL_ID_CTRL
    msg.encode()
    assert w.family_id(bytes(msg.data)[16:]) == 0x2B


async def test_missing_family_is_enoent(pair):
    chan, kernel = pair
    kernel.send(_err(1, errno.ENOENT))
    with pytest.raises(NetlinkError) as info:
        await chan.resolve()
    assert info.value.code == errno.ENOENT


# --- the driver without a kernel ---------------------------------------------------------------


async def test_invalid_values_never_reach_the_socket():
    driver = netlink.NetlinkDriver()
    with pytest.raises(DriverError) as info:
        await driver.apply(AddDest(V4, Dest(DestKey(ip_address("198.51.100.3"), 80), weight=70000)))
    assert info.value.errno == errno.ERANGE
    assert driver._sock is None
    await driver.aclose()


async def test_unknown_netns_is_one_clear_line(tmp_path):
    driver = netlink.NetlinkDriver(netns=str(tmp_path / "absent"))
    with pytest.raises(DriverError) as info:
        await driver.dump()
    assert info.value.errno == errno.ENOENT
    assert "\n" not in str(info.value)
    await driver.aclose()


@pytest.mark.skipif(os.path.exists("/proc/net/ip_vs"), reason="IPVS is available here")
async def test_missing_ipvs_is_one_clear_line(tmp_path, monkeypatch):
    # a modprobe that fails: the test never loads a kernel module on the machine running it
    (tmp_path / "modprobe").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "modprobe").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    driver = netlink.NetlinkDriver()
    with pytest.raises(DriverError) as info:
        await driver.dump()
    text = str(info.value)
    assert text in (
        "IPVS is not available in this kernel (modprobe ip_vs failed)",
        "permission denied: healthd needs CAP_NET_ADMIN",
    )
    await driver.aclose()


def test_counters_with_padding_attributes_take_the_general_path():
    def u64(kind, value):
        return w.attr(kind, struct.pack("=Q", value))

    pad = w.attr(11, b"")  # IPVS_STATS_ATTR_PAD, as 64-bit puts may add on some machines
    stats = pad + u64(1, 7) + pad + u64(2, 8) + u64(3, 9) + u64(4, 10) + u64(5, 2**63)
    assert w.counters(stats, 1, 2, 3) == Counters(1, 2, 3, 7, 8, 9, 10, 2**63)
    assert w.counters(None, 1) == Counters(active_conns=1)


async def test_a_lost_reply_is_a_timeout_error_and_the_next_request_gets_a_fresh_socket(pair):
    chan, kernel = pair
    chan.family = 0x21
    driver = netlink.NetlinkDriver(reply_timeout=0.05)
    driver._chan = chan  # the "kernel" end of the pair never answers
    with pytest.raises(DriverError) as info:
        await driver.apply(DelService(V4))
    assert info.value.errno == errno.ETIMEDOUT
    assert kernel.recv(4096)  # the request was sent
    assert driver._sock is None  # dropped: a late answer can never be read as another's
    await driver.aclose()


async def test_an_unreadable_dump_reply_is_a_driver_error_not_a_crash(pair):
    chan, kernel = pair
    chan.family = 0x21
    driver = netlink.NetlinkDriver(reply_timeout=1.0)
    driver._chan = chan
    # a service message whose nested attribute claims more bytes than it has
    truncated = struct.pack("=BBH", 1, 1, 0) + struct.pack("=HH", 200, w.ATTR_SERVICE | 0x8000)
    kernel.send(_nlmsg(0x21, 1, truncated, w.NLM_F_MULTI) + _nlmsg(w.NLMSG_DONE, 1, bytes(4)))
    with pytest.raises(DriverError) as info:
        await driver.dump()
    assert info.value.errno == errno.EBADMSG
    assert "\n" not in str(info.value)
    await driver.aclose()


class _Overrun(socket.socket):
    """A netlink socket whose receive buffer overflowed during a dump (ENOBUFS)."""

    def recv(self, size: int, flags: int = 0) -> bytes:
        raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))


async def test_enobufs_during_a_dump_drops_the_socket_and_the_next_dump_reconnects(monkeypatch):
    # kernel: a dump whose answers overran the socket's buffer loses messages; the socket's
    # state is unknown, so the driver must not read on it again
    opened: list[socket.socket] = []
    peers: list[socket.socket] = []

    async def connect(self):
        ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        if not opened:
            ours = _Overrun(fileno=ours.detach())
        ours.setblocking(False)
        kernel.send(_nlmsg(w.NLMSG_DONE, 1, bytes(4)))  # an empty table, for a good socket
        opened.append(ours)
        peers.append(kernel)
        chan = netlink._Channel(ours)
        chan.family = 0x21
        return chan

    monkeypatch.setattr(netlink.NetlinkDriver, "_connect", connect)
    driver = netlink.NetlinkDriver()
    with pytest.raises(DriverError) as info:
        await driver.dump()
    assert info.value.errno == errno.ENOBUFS
    assert driver._sock is None
    assert opened[0].fileno() == -1  # closed, never read again
    assert (await driver.dump()).services == {}
    assert len(opened) == 2
    await driver.aclose()
    for s in (*opened, *peers):
        s.close()
