"""NetlinkDriver: the kernel IPVS table over generic netlink ("IPVS" family), via pyroute2.

The only module that imports pyroute2. It builds the IPVS messages itself on pyroute2's
asyncio generic-netlink socket (pyroute2's IPVSService/IPVSDest helpers mis-encode
firewall-mark services and IPv6 netmasks, and its "update" verb sends a delete) and maps
every kernel error to a one-line DriverError. Policy lives in healthd.reconcile.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import AsyncIterator
from ipaddress import IPv4Address, ip_address
from typing import Any, Final

from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import ipvs as genl

from healthd.ipvs.driver import apply_idempotent, error, validate
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
    sched_flag_names,
)

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
NO_IPVS: Final = "IPVS is not available in this kernel (modprobe ip_vs failed)"

Attrs = list[tuple[str, Any]]


class _Socket(genl.AsyncIPVSSocket):  # type: ignore[misc]
    # pyroute2 logs "protocol IPVS not found" at error level; healthd reports it itself
    module_err_level = "debug"


# --- encoding ------------------------------------------------------------------------------


def _netmask_attr(service: Service) -> str:
    # kernel: the netmask attribute is a raw 32-bit word: a network-order mask for IPv4, the
    # prefix length in host order for IPv6 (ip_vs_add_service reads it as a plain u32), so
    # the IPv6 case is passed through pyroute2's ip4addr codec as the bytes of that u32.
    if service.key.family == 6:
        plen = service.netmask if isinstance(service.netmask, int) else 128
        return str(IPv4Address(struct.pack("=I", plen)))
    return str(service.netmask) if service.netmask is not None else "255.255.255.255"


def _key_attrs(key: ServiceKey) -> Attrs:
    attrs: Attrs = [("IPVS_SVC_ATTR_AF", FAMILY[key.family])]
    if key.proto is Protocol.FWM:
        return [*attrs, ("IPVS_SVC_ATTR_FWMARK", key.fwmark)]
    return [
        *attrs,
        ("IPVS_SVC_ATTR_PROTOCOL", PROTO_NUM[key.proto]),
        ("IPVS_SVC_ATTR_ADDR", str(key.address)),
        ("IPVS_SVC_ATTR_PORT", key.port),
    ]


def _service_attrs(service: Service) -> Attrs:
    flags = service.flag_bits
    if service.persistent is not None:
        flags |= F_PERSISTENT
    if service.one_packet:
        flags |= F_ONEPACKET
    return [
        *_key_attrs(service.key),
        ("IPVS_SVC_ATTR_SCHED_NAME", service.scheduler),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": flags, "mask": 0xFFFFFFFF}),
        ("IPVS_SVC_ATTR_TIMEOUT", service.persistent or 0),
        ("IPVS_SVC_ATTR_NETMASK", _netmask_attr(service)),
    ]


def _dest_attrs(dest: Dest, full: bool) -> Attrs:
    family = FAMILY[dest.key.address.version]
    attrs: Attrs = [
        ("IPVS_DEST_ATTR_ADDR_FAMILY", family),
        ("IPVS_DEST_ATTR_ADDR", str(dest.key.address)),
        ("IPVS_DEST_ATTR_PORT", dest.key.port),
    ]
    if full:
        attrs += [
            ("IPVS_DEST_ATTR_FWD_METHOD", METHOD_NUM[dest.method]),
            ("IPVS_DEST_ATTR_WEIGHT", dest.weight),
            ("IPVS_DEST_ATTR_U_THRESH", dest.upper),
            ("IPVS_DEST_ATTR_L_THRESH", dest.lower),
        ]
    return attrs


def encode(op: Op) -> tuple[int, Attrs]:
    """Return the generic-netlink command and attributes that carry op to the kernel."""
    svc = "IPVS_CMD_ATTR_SERVICE"
    dst = "IPVS_CMD_ATTR_DEST"
    match op:
        case AddService(service=s):
            return genl.IPVS_CMD_NEW_SERVICE, [(svc, {"attrs": _service_attrs(s)})]
        case EditService(service=s):
            return genl.IPVS_CMD_SET_SERVICE, [(svc, {"attrs": _service_attrs(s)})]
        case DelService(key=k):
            return genl.IPVS_CMD_DEL_SERVICE, [(svc, {"attrs": _key_attrs(k)})]
        case AddDest(service=k, dest=d):
            cmd, full = genl.IPVS_CMD_NEW_DEST, True
        case EditDest(service=k, dest=d):
            cmd, full = genl.IPVS_CMD_SET_DEST, True
        case DelDest(service=k, key=dk):
            cmd, full, d = genl.IPVS_CMD_DEL_DEST, False, Dest(dk)
    return cmd, [(svc, {"attrs": _key_attrs(k)}), (dst, {"attrs": _dest_attrs(d, full)})]


# --- decoding ------------------------------------------------------------------------------


def _counters(nla: Any, active: int = 0, inactive: int = 0, persist: int = 0) -> Counters:
    stats = nla.get_attr("IPVS_SVC_ATTR_STATS64") or nla.get_attr("IPVS_DEST_ATTR_STATS64")
    get = stats.get_attr if stats is not None else (lambda _name: 0)
    return Counters(
        active_conns=active,
        inactive_conns=inactive,
        persist_conns=persist,
        conns=get("IPVS_STATS_ATTR_CONNS") or 0,
        inpkts=get("IPVS_STATS_ATTR_INPKTS") or 0,
        outpkts=get("IPVS_STATS_ATTR_OUTPKTS") or 0,
        inbytes=get("IPVS_STATS_ATTR_INBYTES") or 0,
        outbytes=get("IPVS_STATS_ATTR_OUTBYTES") or 0,
    )


def decode_service(nla: Any) -> tuple[Service, Counters]:
    """Return the Service and its counters from an IPVS_CMD_ATTR_SERVICE attribute."""
    family = VERSION[nla.get_attr("IPVS_SVC_ATTR_AF")]
    fwmark = nla.get_attr("IPVS_SVC_ATTR_FWMARK") or 0
    if fwmark:
        key = ServiceKey(Protocol.FWM, fwmark=fwmark, family=family)
    else:
        proto = PROTO_NAME[nla.get_attr("IPVS_SVC_ATTR_PROTOCOL")]
        address = ip_address(nla.get_attr("IPVS_SVC_ATTR_ADDR"))
        key = ServiceKey(proto, address, nla.get_attr("IPVS_SVC_ATTR_PORT"))
    flags = nla.get_attr("IPVS_SVC_ATTR_FLAGS")["flags"]
    scheduler = nla.get_attr("IPVS_SVC_ATTR_SCHED_NAME")
    persistent = nla.get_attr("IPVS_SVC_ATTR_TIMEOUT") if flags & F_PERSISTENT else None
    raw_mask = nla.get_attr("IPVS_SVC_ATTR_NETMASK")
    netmask: str | int = raw_mask
    if family == 6:
        netmask = struct.unpack("=I", IPv4Address(raw_mask).packed)[0]
    service = Service(
        key,
        scheduler=scheduler,
        persistent=persistent,
        netmask=netmask,
        one_packet=bool(flags & F_ONEPACKET),
        sched_flags=sched_flag_names(scheduler, flags & F_SCHED_MASK),
    )
    return service, _counters(nla)


def decode_dest(nla: Any) -> tuple[Dest, Counters]:
    """Return the Dest and its counters from an IPVS_CMD_ATTR_DEST attribute."""
    dest = Dest(
        DestKey(
            ip_address(nla.get_attr("IPVS_DEST_ATTR_ADDR")), nla.get_attr("IPVS_DEST_ATTR_PORT")
        ),
        weight=nla.get_attr("IPVS_DEST_ATTR_WEIGHT"),
        method=METHOD_NAME[nla.get_attr("IPVS_DEST_ATTR_FWD_METHOD") & 0x7],
        upper=nla.get_attr("IPVS_DEST_ATTR_U_THRESH") or 0,
        lower=nla.get_attr("IPVS_DEST_ATTR_L_THRESH") or 0,
    )
    counters = _counters(
        nla,
        active=nla.get_attr("IPVS_DEST_ATTR_ACTIVE_CONNS") or 0,
        inactive=nla.get_attr("IPVS_DEST_ATTR_INACT_CONNS") or 0,
        persist=nla.get_attr("IPVS_DEST_ATTR_PERSIST_CONNS") or 0,
    )
    return dest, counters


# --- the driver ----------------------------------------------------------------------------


async def _modprobe(module: str) -> bool:
    """Return True if `modprobe module` ran and succeeded."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "modprobe",
            module,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return False
    return await proc.wait() == 0


class NetlinkDriver:
    """IPVSDriver over the kernel's generic-netlink IPVS family.

    `netns` names a network namespace (as `ip netns` does): the socket is opened inside it,
    so the driver sees that namespace's IPVS table. The socket opens on first use; the
    kernel module ip_vs is loaded once with modprobe if the family is missing.
    """

    def __init__(self, *, netns: str | None = None) -> None:
        self.netns = netns
        self._sock: _Socket | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> _Socket:
        if self._sock is not None:
            return self._sock
        try:
            sock = await self._connect()
        except NetlinkError as exc:
            if exc.code != errno.ENOENT:
                raise error(None, exc.code) from None
            # kernel: the "IPVS" family appears only once ip_vs is loaded; try that once
            if not await _modprobe("ip_vs"):
                raise error(None, errno.ENOENT, NO_IPVS) from None
            try:
                sock = await self._connect()
            except NetlinkError:
                raise error(None, errno.ENOENT, NO_IPVS) from None
        self._sock = sock
        return sock

    async def _connect(self) -> _Socket:
        sock = _Socket(netns=self.netns) if self.netns else _Socket()
        try:
            await sock.setup_endpoint()
        except BaseException:
            sock.close()
            raise
        return sock

    async def _request(self, cmd: int, attrs: Attrs, *, dump: bool = False) -> list[Any]:
        sock = await self._open()
        msg = genl.ipvsmsg()
        msg["cmd"] = cmd
        msg["version"] = genl.GENL_VERSION
        msg["attrs"] = attrs
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        replies: list[Any] = await sock._do_request(msg, msg_flags=flags)
        return replies

    async def dump(self) -> Table:
        """Return the whole table in the kernel's order, with counters."""
        async with self._lock:
            try:
                return Table({e.service.key: e async for e in self._entries()})
            except NetlinkError as exc:
                raise error(None, exc.code) from None
            except OSError as exc:
                raise error(None, exc.errno or errno.EIO) from None

    async def _entries(self) -> AsyncIterator[ServiceEntry]:
        # kernel: one dump at a time per netlink socket (a second one gets EBUSY), so the
        # destination dumps go one service after another
        replies = await self._request(genl.IPVS_CMD_GET_SERVICE, [], dump=True)
        for reply in replies:
            service, counters = decode_service(reply.get_attr("IPVS_CMD_ATTR_SERVICE"))
            key = [("IPVS_CMD_ATTR_SERVICE", {"attrs": _key_attrs(service.key)})]
            dests: dict[DestKey, Dest] = {}
            dest_counters: dict[DestKey, Counters] = {}
            for d in await self._request(genl.IPVS_CMD_GET_DEST, key, dump=True):
                dest, dc = decode_dest(d.get_attr("IPVS_CMD_ATTR_DEST"))
                dests[dest.key] = dest
                dest_counters[dest.key] = dc
            yield ServiceEntry(service, dests, counters, dest_counters)

    async def apply(self, op: Op) -> None:
        """Apply one op with the shared errno policy (see healthd.ipvs.driver)."""
        async with self._lock:
            await apply_idempotent(self.apply_raw, op)

    async def apply_raw(self, op: Op) -> None:
        """Send op as one kernel command, raising DriverError with the kernel's errno."""
        validate(op)
        cmd, attrs = encode(op)
        try:
            await self._request(cmd, attrs)
        except NetlinkError as exc:
            raise error(op, exc.code) from None
        except OSError as exc:
            raise error(op, exc.errno or errno.EIO) from None

    async def aclose(self) -> None:
        """Close the netlink socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
