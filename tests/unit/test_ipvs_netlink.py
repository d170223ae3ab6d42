"""NetlinkDriver message encoding and decoding, checked offline through pyroute2's codec.

The kernel side of the driver is proved by tests/contract in the VM; these pin the wire
format details that pyroute2's own helpers get wrong (fwmark keys, IPv6 netmasks, flags).
"""

from __future__ import annotations

import errno
import os
import struct
from ipaddress import ip_address

import pytest

from healthd.errors import DriverError
from healthd.ipvs.driver import IPVSDriver
from healthd.ipvs.types import (
    AddDest,
    AddService,
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

netlink = pytest.importorskip("healthd.ipvs.netlink")
genl = pytest.importorskip("pyroute2.netlink.generic.ipvs")

_: IPVSDriver = netlink.NetlinkDriver()  # mypy: NetlinkDriver satisfies the protocol

V4 = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
V6 = ServiceKey(Protocol.UDP, ip_address("2001:db8::10"), 53)
FWM6 = ServiceKey(Protocol.FWM, fwmark=9, family=6)
SCTP = ServiceKey(Protocol.SCTP, ip_address("192.0.2.10"), 3868)


def _wire(op):
    """Encode op to bytes and decode it again, as the kernel would receive it."""
    cmd, attrs = netlink.encode(op)
    msg = genl.ipvsmsg()
    msg["cmd"] = cmd
    msg["version"] = genl.GENL_VERSION
    msg["attrs"] = attrs
    msg["header"]["type"] = 0x20
    msg.encode()
    back = genl.ipvsmsg(msg.data)
    back.decode()
    return cmd, back


def _netmask_bytes(op) -> bytes:
    """Return the payload of the IPVS_SVC_ATTR_NETMASK attribute (type 9) in op's message."""
    cmd, attrs = netlink.encode(op)
    msg = genl.ipvsmsg()
    msg["cmd"] = cmd
    msg["attrs"] = attrs
    msg.encode()
    header = struct.pack("=HH", 8, 9)
    at = bytes(msg.data).index(header) + len(header)
    return bytes(msg.data)[at : at + 4]


@pytest.mark.parametrize(
    "service",
    [
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
    ],
)
@pytest.mark.parametrize("kind", [AddService, EditService])
def test_service_round_trip(service, kind):
    cmd, msg = _wire(kind(service))
    assert cmd == (genl.IPVS_CMD_NEW_SERVICE if kind is AddService else genl.IPVS_CMD_SET_SERVICE)
    decoded, _counters = netlink.decode_service(msg.get_attr("IPVS_CMD_ATTR_SERVICE"))
    assert decoded == service


def test_fwmark_key_has_no_address_port_or_protocol():
    _cmd, msg = _wire(DelService(FWM6))
    attrs = dict(msg.get_attr("IPVS_CMD_ATTR_SERVICE")["attrs"])
    assert attrs == {"IPVS_SVC_ATTR_AF": 10, "IPVS_SVC_ATTR_FWMARK": 9}


def test_ipv6_netmask_is_a_host_order_prefix_length():
    assert _netmask_bytes(AddService(Service(V6, persistent=60, netmask=64))) == struct.pack(
        "=I", 64
    )
    v4 = Service(V4, persistent=60, netmask="255.255.240.0")
    assert _netmask_bytes(AddService(v4)) == bytes([255, 255, 240, 0])
    assert _netmask_bytes(AddService(Service(V6))) == struct.pack("=I", 128)


def test_flags_carry_persistence_ops_and_scheduler_bits_with_full_mask():
    s = Service(V6, "sh", persistent=60, one_packet=True, sched_flags=frozenset({"sh-port"}))
    _cmd, msg = _wire(AddService(s))
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
    cmd, msg = _wire(kind(V6, dest))
    assert cmd == (genl.IPVS_CMD_NEW_DEST if kind is AddDest else genl.IPVS_CMD_SET_DEST)
    nla = msg.get_attr("IPVS_CMD_ATTR_DEST")
    assert nla.get_attr("IPVS_DEST_ATTR_FWD_METHOD") == number
    assert nla.get_attr("IPVS_DEST_ATTR_ADDR_FAMILY") == 10
    decoded, _counters = netlink.decode_dest(nla)
    assert decoded == dest


def test_del_dest_sends_only_the_keys():
    cmd, msg = _wire(DelDest(V4, DestKey(ip_address("198.51.100.3"), 80)))
    assert cmd == genl.IPVS_CMD_DEL_DEST
    dest = dict(msg.get_attr("IPVS_CMD_ATTR_DEST")["attrs"])
    assert dest == {
        "IPVS_DEST_ATTR_ADDR_FAMILY": 2,
        "IPVS_DEST_ATTR_ADDR": "198.51.100.3",
        "IPVS_DEST_ATTR_PORT": 80,
    }
    assert dict(msg.get_attr("IPVS_CMD_ATTR_SERVICE")["attrs"])["IPVS_SVC_ATTR_PROTOCOL"] == 6


async def test_invalid_values_never_reach_the_socket():
    driver = netlink.NetlinkDriver()
    with pytest.raises(DriverError) as info:
        await driver.apply(AddDest(V4, Dest(DestKey(ip_address("198.51.100.3"), 80), weight=70000)))
    assert info.value.errno == errno.ERANGE
    assert driver._sock is None
    await driver.aclose()


@pytest.mark.skipif(os.path.exists("/proc/net/ip_vs"), reason="IPVS is available here")
async def test_missing_ipvs_is_one_clear_line():
    driver = netlink.NetlinkDriver()
    with pytest.raises(DriverError) as info:
        await driver.dump()
    text = str(info.value)
    assert text in (
        "IPVS is not available in this kernel (modprobe ip_vs failed)",
        "permission denied: healthd needs CAP_NET_ADMIN",
    )
    await driver.aclose()
