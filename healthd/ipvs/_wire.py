"""The IPVS generic-netlink wire format, encoded and decoded with struct from raw bytes.

Pure: no sockets, no pyroute2. healthd.ipvs.netlink frames these payloads on its socket.
Layouts follow the kernel's include/uapi/linux/ip_vs.h and net/netfilter/ipvs/ip_vs_ctl.c.
"""

from __future__ import annotations

import functools
import socket
import struct
import sys
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Final

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
    ServiceKey,
    sched_flag_names,
)

# netlink and generic netlink (linux/netlink.h, linux/genetlink.h)
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x01
NLM_F_MULTI: Final = 0x02
NLM_F_ACK: Final = 0x04
NLM_F_DUMP: Final = 0x300
GENL_ID_CTRL: Final = 0x10
CTRL_CMD_GETFAMILY: Final = 3
CTRL_ATTR_FAMILY_ID: Final = 1
CTRL_ATTR_FAMILY_NAME: Final = 2
IPVS_GENL_VERSION: Final = 1

# IPVS commands
CMD_NEW_SERVICE: Final = 1
CMD_SET_SERVICE: Final = 2
CMD_DEL_SERVICE: Final = 3
CMD_GET_SERVICE: Final = 4
CMD_NEW_DEST: Final = 5
CMD_SET_DEST: Final = 6
CMD_DEL_DEST: Final = 7
CMD_GET_DEST: Final = 8
# attributes: IPVS_CMD_ATTR_*, IPVS_SVC_ATTR_*, IPVS_DEST_ATTR_*, IPVS_STATS_ATTR_*
ATTR_SERVICE: Final = 1
ATTR_DEST: Final = 2
SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK = 1, 2, 3, 4, 5
SVC_SCHED_NAME, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK, SVC_STATS64 = 6, 7, 8, 9, 12
DST_ADDR, DST_PORT, DST_FWD_METHOD, DST_WEIGHT, DST_U_THRESH, DST_L_THRESH = 1, 2, 3, 4, 5, 6
DST_ACTIVE, DST_INACT, DST_PERSIST, DST_FAMILY, DST_STATS64 = 7, 8, 9, 11, 12
NLA_TYPE_MASK: Final = 0x3FFF  # strips NLA_F_NESTED and NLA_F_NET_BYTEORDER

F_PERSISTENT: Final = 0x01
F_ONEPACKET: Final = 0x04
F_SCHED_MASK: Final = 0x38
PROTO_NUM: Final = {Protocol.TCP: socket.IPPROTO_TCP, Protocol.UDP: socket.IPPROTO_UDP}
PROTO_NUM[Protocol.SCTP] = 132  # IPPROTO_SCTP
PROTO_NAME: Final = {num: proto for proto, num in PROTO_NUM.items()}
METHOD_NUM: Final = {Method.MASQ: 0, Method.TUNNEL: 2, Method.ROUTE: 3}
METHOD_NAME: Final = {0: Method.MASQ, 1: Method.ROUTE, 2: Method.TUNNEL, 3: Method.ROUTE}
FAMILY: Final = {4: socket.AF_INET, 6: socket.AF_INET6}
VERSION: Final = {socket.AF_INET: 4, socket.AF_INET6: 6}

_NLMSGHDR: Final = struct.Struct("=IHHII")
_GENLHDR: Final = struct.Struct("=BBH")
_NLA: Final = struct.Struct("=HH")
_U16: Final = struct.Struct("=H")
_BE16: Final = struct.Struct("!H")
_U32: Final = struct.Struct("=I")
_I32: Final = struct.Struct("=i")
_U64: Final = struct.Struct("=Q")
_FLAGS: Final = struct.Struct("=II")
HEADER_LEN: Final = _NLMSGHDR.size + _GENLHDR.size

Attrs = dict[int, bytes]


# --- framing -------------------------------------------------------------------------------


def attr(kind: int, payload: bytes) -> bytes:
    """Return one netlink attribute, padded to 4 bytes."""
    size = _NLA.size + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (-size % 4)


def message(family: int, cmd: int, payload: bytes, seq: int, flags: int) -> bytes:
    """Return a generic-netlink request: nlmsghdr, genlmsghdr, then payload (attributes)."""
    size = HEADER_LEN + len(payload)
    head = _NLMSGHDR.pack(size, family, flags, seq, 0)
    return head + _GENLHDR.pack(cmd, IPVS_GENL_VERSION, 0) + payload


def split(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """Yield (type, flags, seq, body after nlmsghdr) for each netlink message in a datagram."""
    at, end = 0, len(data)
    while at + _NLMSGHDR.size <= end:
        size, kind, flags, seq, _pid = _NLMSGHDR.unpack_from(data, at)
        if size < _NLMSGHDR.size:
            return
        yield kind, flags, seq, data[at + _NLMSGHDR.size : at + size]
        at += (size + 3) & ~3


def error_code(body: bytes) -> int:
    """Return the positive errno of an NLMSG_ERROR body (0 for an ack)."""
    code: int = _I32.unpack_from(body)[0]
    return -code


def attrs(data: bytes, start: int = 0) -> Attrs:
    """Return the attributes in data[start:] by type (the last one of a type wins)."""
    out: Attrs = {}
    at, end = start, len(data)
    while at + 4 <= end:
        size, kind = _NLA.unpack_from(data, at)
        if size < 4:
            break
        out[kind & NLA_TYPE_MASK] = data[at + 4 : at + size]
        at += (size + 3) & ~3
    return out


def family_request(seq: int) -> bytes:
    """Return CTRL_CMD_GETFAMILY for "IPVS" (the family id is assigned at module load)."""
    return message(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, attr(CTRL_ATTR_FAMILY_NAME, b"IPVS\0"), seq,
                   NLM_F_REQUEST | NLM_F_ACK)  # fmt: skip


def family_id(body: bytes) -> int | None:
    """Return the family id in a CTRL_CMD_NEWFAMILY reply body, if there is one."""
    value = attrs(body, _GENLHDR.size).get(CTRL_ATTR_FAMILY_ID)
    return _U16.unpack(value[:2])[0] if value is not None else None


# --- encoding ------------------------------------------------------------------------------


def _addr(address: IPv4Address | IPv6Address) -> bytes:
    # kernel: addresses travel as a 16-byte union nf_inet_addr, IPv4 in the first 4 bytes
    return address.packed.ljust(16, b"\0")


def _netmask(service: Service) -> bytes:
    # kernel: the netmask is a raw u32: a network-order mask for IPv4, the prefix length in
    # host order for IPv6 (ip_vs_add_service reads it as a plain number)
    if service.key.family == 6:
        plen = service.netmask if isinstance(service.netmask, int) else 128
        return _U32.pack(plen)
    mask = service.netmask if service.netmask is not None else "255.255.255.255"
    return IPv4Address(str(mask)).packed


# kernel order does not matter; fixed layouts let one struct call pack a whole key or dest
# (u16 values padded to 4 bytes, ports pre-swapped to network order)
_ADDR_KEY: Final = struct.Struct("=HHH2xHHH2xHH16sHHH2x")
_FWM_KEY: Final = struct.Struct("=HHH2xHHI")
_DEST_KEY: Final = struct.Struct("=HHH2xHH16sHHH2x")
_DEST_SET: Final = struct.Struct("=HHIHHIHHIHHI")


def key_attrs(key: ServiceKey) -> bytes:
    """Return the attributes that name a service (nested under IPVS_CMD_ATTR_SERVICE)."""
    af = FAMILY[key.family]
    if key.proto is Protocol.FWM:
        return _FWM_KEY.pack(6, SVC_AF, af, 8, SVC_FWMARK, key.fwmark)
    assert key.address is not None  # validate() guarantees it
    port = socket.htons(key.port)
    proto = PROTO_NUM[key.proto]
    return _ADDR_KEY.pack(6, SVC_AF, af, 6, SVC_PROTOCOL, proto,
                          20, SVC_ADDR, key.address.packed, 6, SVC_PORT, port)  # fmt: skip


def service_attrs(service: Service) -> bytes:
    """Return the attributes of a whole service definition."""
    flags = service.flag_bits
    if service.persistent is not None:
        flags |= F_PERSISTENT
    if service.one_packet:
        flags |= F_ONEPACKET
    return (
        key_attrs(service.key)
        + attr(SVC_SCHED_NAME, service.scheduler.encode("ascii") + b"\0")
        + attr(SVC_FLAGS, _FLAGS.pack(flags, 0xFFFFFFFF))
        + attr(SVC_TIMEOUT, _U32.pack(service.persistent or 0))
        + attr(SVC_NETMASK, _netmask(service))
    )


def dest_attrs(dest: Dest, full: bool) -> bytes:
    """Return a destination's attributes: its key, and with `full` its settings too."""
    address = dest.key.address
    out = _DEST_KEY.pack(6, DST_FAMILY, FAMILY[address.version], 20, DST_ADDR, address.packed,
                         6, DST_PORT, socket.htons(dest.key.port))  # fmt: skip
    if full:
        out += _DEST_SET.pack(8, DST_FWD_METHOD, METHOD_NUM[dest.method],
                              8, DST_WEIGHT, dest.weight % 2**32,
                              8, DST_U_THRESH, dest.upper, 8, DST_L_THRESH, dest.lower)  # fmt: skip
    return out


def encode(op: Op) -> tuple[int, bytes]:
    """Return the IPVS command and the attribute bytes that carry op to the kernel."""
    match op:
        case AddService(service=s):
            return CMD_NEW_SERVICE, attr(ATTR_SERVICE, service_attrs(s))
        case EditService(service=s):
            return CMD_SET_SERVICE, attr(ATTR_SERVICE, service_attrs(s))
        case DelService(key=k):
            return CMD_DEL_SERVICE, attr(ATTR_SERVICE, key_attrs(k))
        case AddDest(service=k, dest=d):
            cmd, full = CMD_NEW_DEST, True
        case EditDest(service=k, dest=d):
            cmd, full = CMD_SET_DEST, True
        case DelDest(service=k, key=dk):
            cmd, full, d = CMD_DEL_DEST, False, Dest(dk)
    return cmd, attr(ATTR_SERVICE, key_attrs(k)) + attr(ATTR_DEST, dest_attrs(d, full))


# --- decoding ------------------------------------------------------------------------------


def _u(value: bytes | None) -> int:
    """Return a host-order u16/u32/u64 attribute value (0 when absent)."""
    if value is None:
        return 0
    return int.from_bytes(value[:8] if len(value) >= 8 else value[:4], sys.byteorder)


@functools.lru_cache(maxsize=65536)
def _ip(value: bytes, family: int) -> IPv4Address | IPv6Address:
    # the same few addresses recur across services; building an address object is the
    # dearest step of decoding a destination
    return ip_address(value[:4] if family == 4 else value[:16])


# kernel: ip_vs_genl_fill_stats64 puts CONNS..OUTBYTES first, in this order, as u64s
_STATS_HEAD: Final = struct.Struct("=" + "HHQ" * 5)
_STATS_SHAPE: Final = ((12, 1), (12, 2), (12, 3), (12, 4), (12, 5))


def counters(stats: bytes | None, active: int = 0, inactive: int = 0, persist: int = 0) -> Counters:
    """Return Counters from a nested IPVS_*_ATTR_STATS64 attribute (all u64)."""
    if stats is None:
        return Counters(active, inactive, persist)
    if len(stats) >= _STATS_HEAD.size:
        v = _STATS_HEAD.unpack_from(stats)
        shape = ((v[0], v[1] & NLA_TYPE_MASK), (v[3], v[4] & NLA_TYPE_MASK), (v[6], v[7]),
                 (v[9], v[10]), (v[12], v[13]))  # fmt: skip
        if shape == _STATS_SHAPE:
            return Counters(active, inactive, persist, v[2], v[5], v[8], v[11], v[14])
    got = attrs(stats)  # another layout (padding attributes, say): the general way
    u64 = _U64.unpack
    values = (u64(got[i][:8])[0] if i in got else 0 for i in (1, 2, 3, 4, 5))
    return Counters(active, inactive, persist, *values)


def decode_service(nested: bytes) -> tuple[Service, Counters]:
    """Return the Service and its counters from the payload of IPVS_CMD_ATTR_SERVICE."""
    a = attrs(nested)
    family = VERSION[_U16.unpack(a[SVC_AF][:2])[0]]
    fwmark = _u(a.get(SVC_FWMARK))
    if fwmark:
        key = ServiceKey(Protocol.FWM, fwmark=fwmark, family=family)
    else:
        proto = PROTO_NAME[_U16.unpack(a[SVC_PROTOCOL][:2])[0]]
        port = _BE16.unpack(a[SVC_PORT][:2])[0]
        key = ServiceKey(proto, _ip(a[SVC_ADDR], family), port)
    flags = _FLAGS.unpack(a[SVC_FLAGS][:8])[0]
    scheduler = a[SVC_SCHED_NAME].split(b"\0", 1)[0].decode("ascii", "replace")
    persistent = _u(a.get(SVC_TIMEOUT)) if flags & F_PERSISTENT else None
    raw_mask = a.get(SVC_NETMASK, b"\xff\xff\xff\xff")[:4]
    netmask: str | int = _U32.unpack(raw_mask)[0] if family == 6 else str(IPv4Address(raw_mask))
    service = Service(
        key,
        scheduler=scheduler,
        persistent=persistent,
        netmask=netmask,
        one_packet=bool(flags & F_ONEPACKET),
        sched_flags=sched_flag_names(scheduler, flags & F_SCHED_MASK),
    )
    return service, counters(a.get(SVC_STATS64))


def _offsets(data: bytes) -> dict[int, int]:
    """Return where each attribute's payload starts in data, by type."""
    found: dict[int, int] = {}
    at, end, head = 0, len(data), _NLA.unpack_from
    while at + 4 <= end:
        size, kind = head(data, at)
        if size < 4:
            break
        found[kind & NLA_TYPE_MASK] = at + 4
        at += (size + 3) & ~3
    return found


def decode_dest(nested: bytes, family: int = 4) -> tuple[Dest, Counters]:
    """Return the Dest and its counters from the payload of IPVS_CMD_ATTR_DEST.

    `family` (4 or 6) is the service's, used when the kernel sends no address family.
    """
    at = _offsets(nested)
    u32 = _U32.unpack_from
    if DST_FAMILY in at:
        family = VERSION[_U16.unpack_from(nested, at[DST_FAMILY])[0]]
    start = at[DST_ADDR]
    address = _ip(nested[start : start + (4 if family == 4 else 16)], family)
    dest = Dest(
        DestKey(address, _BE16.unpack_from(nested, at[DST_PORT])[0]),
        weight=u32(nested, at[DST_WEIGHT])[0],
        method=METHOD_NAME[u32(nested, at[DST_FWD_METHOD])[0] & 0x7],
        upper=u32(nested, at[DST_U_THRESH])[0] if DST_U_THRESH in at else 0,
        lower=u32(nested, at[DST_L_THRESH])[0] if DST_L_THRESH in at else 0,
    )
    conns = [u32(nested, at[i])[0] if i in at else 0 for i in (DST_ACTIVE, DST_INACT, DST_PERSIST)]
    stats = None
    if DST_STATS64 in at:
        start = at[DST_STATS64]
        stats = nested[start : start + _NLA.unpack_from(nested, start - 4)[0] - 4]
    return dest, counters(stats, *conns)


def reply_attr(body: bytes, kind: int) -> bytes | None:
    """Return one top-level attribute of a generic-netlink reply body (after nlmsghdr)."""
    if len(body) >= 8:
        # the IPVS replies carry a single attribute: take it without a general parse
        size, found = _NLA.unpack_from(body, 4)
        if found & NLA_TYPE_MASK == kind and size + 4 >= len(body) - 3:
            return body[8 : 4 + size]
    return attrs(body, _GENLHDR.size).get(kind)
