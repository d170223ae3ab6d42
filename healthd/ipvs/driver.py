"""The IPVSDriver protocol: the one seam between healthd and the kernel's IPVS table.

Drivers are policy-free about *what* to change (healthd.reconcile decides); this module fixes
what every driver shares: value checks made before the kernel sees an op, the errno policy
that makes ops idempotent, and the one-line messages of DriverError. No I/O here.

Errno policy, applied by `apply_idempotent` for NetlinkDriver and FakeDriver alike:

    op           raw kernel answer        result
    -----------  -----------------------  ---------------------------------------------------
    AddService   EEXIST                   success, after editing the service to match the op
    EditService  ESRCH (no such service)  the service is added
    DelService   ESRCH                    success: already gone
    AddDest      EEXIST                   success, after editing the destination to match
    EditDest     ENOENT (no such dest)    the destination is added (keepalived ipvs_talk)
    DelDest      ENOENT or ESRCH          success: already gone
    Add/EditDest ESRCH (no service)       DriverError(ENOENT, "service ... does not exist")

Any other failure is a DriverError(op, errno, message) with a one-line message: EPERM (no
CAP_NET_ADMIN), ENOENT from Add/EditService (scheduler module missing), EINVAL or ERANGE for
values the kernel refuses (see `validate`).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Awaitable, Callable, Iterable
from ipaddress import IPv4Address
from typing import Final, Protocol

from healthd.errors import DriverError
from healthd.ipvs.types import (
    SCHED_FLAG_BITS,
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    EditDest,
    EditService,
    IPAddress,
    Method,
    Op,
    Service,
    ServiceKey,
    Table,
)
from healthd.ipvs.types import Protocol as Proto

__all__ = ["DriverError", "IPVSDriver", "apply_all", "apply_idempotent", "validate"]

MAX_WEIGHT: Final = 65535  # ipvsadm's range; the kernel only refuses < 0 (ERANGE)
MAX_U32: Final = 2**32 - 1
MAX_THRESHOLD: Final = 2**31 - 1  # ipvsadm's range; the kernel refuses 2**32 - 1 (EINVAL)
MAX_PERSISTENT: Final = 2_147_483  # seconds: the kernel keeps timeout * HZ in 32 bits
SCHEDNAME_MAX: Final = 15  # kernel: IP_VS_SCHEDNAME_MAXLEN 16 with the NUL


class IPVSDriver(Protocol):
    """Thin, policy-free access to the kernel IPVS table."""

    async def dump(self) -> Table:
        """Return the whole table: services, their destinations and counters."""
        ...

    async def apply(self, op: Op) -> None:
        """Apply one op idempotently (see the errno policy above); raise DriverError."""
        ...

    async def aclose(self) -> None:
        """Release the driver's kernel resources; the driver is unusable afterwards."""
        ...


async def apply_all(driver: IPVSDriver, ops: Iterable[Op]) -> None:
    """Apply ops in order, stopping at the first DriverError (which propagates)."""
    for op in ops:
        await driver.apply(op)


def message(op: Op | None, err: int) -> str:
    """Return the one-line explanation of a kernel errno for this op."""
    if err == errno.EPERM:
        return "permission denied: healthd needs CAP_NET_ADMIN"
    if err == errno.ENOENT and isinstance(op, AddService | EditService):
        name = op.service.scheduler
        return f"scheduler {name!r} is not available: kernel module ip_vs_{name} not loaded"
    if err == errno.ESRCH and isinstance(op, AddDest | EditDest | DelDest):
        return f"service {op.service} does not exist"
    if err == errno.ESRCH and isinstance(op, EditService | DelService):
        return "service does not exist"
    name = errno.errorcode.get(err, str(err))
    return f"{os.strerror(err).lower()} ({name})"


def error(op: Op | None, err: int, text: str | None = None) -> DriverError:
    """Return a DriverError for op with the standard message (or `text`)."""
    return DriverError(op, err, text if text is not None else message(op, err))


async def apply_idempotent(raw: Callable[[Op], Awaitable[None]], op: Op) -> None:
    """Apply op through `raw` (which raises the kernel's errno) with the errno policy."""
    try:
        await raw(op)
    except DriverError as exc:
        if _already_done(op, exc.errno):
            return
        retry = _fallback(op, exc.errno)
        if retry is None:
            raise _public(op, exc) from None
        try:
            await raw(retry)
        except DriverError as again:
            raise _public(op, again) from None


def _already_done(op: Op, err: int) -> bool:
    """Return True when the raw answer means a delete found nothing to delete."""
    if isinstance(op, DelService):
        return err == errno.ESRCH
    return isinstance(op, DelDest) and err in (errno.ENOENT, errno.ESRCH)


def _fallback(op: Op, err: int) -> Op | None:
    """Return the op that completes `op` after the raw answer `err`, or None to fail."""
    match op:
        case AddService(service=s) if err == errno.EEXIST:
            return EditService(s)
        case EditService(service=s) if err == errno.ESRCH:
            return AddService(s)
        case AddDest(service=k, dest=d) if err == errno.EEXIST:
            return EditDest(k, d)
        case EditDest(service=k, dest=d) if err == errno.ENOENT:
            return AddDest(k, d)
    return None


def _public(op: Op, exc: DriverError) -> DriverError:
    """Return the error to report for op (named after op, not after a retried op)."""
    if exc.errno == errno.ESRCH and isinstance(op, AddDest | EditDest):
        return error(op, errno.ENOENT, f"service {op.service} does not exist")
    return DriverError(op, exc.errno, exc.message)


# --- value checks shared by both drivers ------------------------------------------------


def validate(op: Op) -> None:
    """Raise DriverError(EINVAL or ERANGE) for values the kernel would refuse or mangle."""
    match op:
        case AddService(service=s) | EditService(service=s):
            _check_key(op, s.key)
            _check_service(op, s)
        case DelService(key=k):
            _check_key(op, k)
        case AddDest(service=k, dest=d) | EditDest(service=k, dest=d):
            _check_key(op, k)
            _check_dest(op, k, d)
        case DelDest(service=k, key=dk):
            _check_key(op, k)
            _check_port(op, dk.port)


def _invalid(op: Op, text: str, err: int = errno.EINVAL) -> DriverError:
    return DriverError(op, err, text)


def _check_port(op: Op, port: int) -> None:
    if not 0 <= port <= 65535:
        raise _invalid(op, f"port {port} is out of range 0..65535")


def _check_key(op: Op, key: ServiceKey) -> None:
    if key.proto is Proto.FWM:
        if key.address is not None or key.port:
            raise _invalid(op, "a firewall-mark service has no address or port")
        if not 1 <= key.fwmark <= MAX_U32:
            raise _invalid(op, f"firewall mark {key.fwmark} is out of range 1..{MAX_U32}")
        if key.family not in (4, 6):
            raise _invalid(op, f"address family {key.family} is not 4 or 6")
        return
    if key.address is None:
        raise _invalid(op, f"a {key.proto} service needs an address")
    if key.fwmark:
        raise _invalid(op, f"a {key.proto} service has no firewall mark")
    _check_port(op, key.port)


def _check_service(op: Op, s: Service) -> None:
    if not s.scheduler or len(s.scheduler) > SCHEDNAME_MAX or not s.scheduler.isascii():
        raise _invalid(op, f"scheduler name {s.scheduler!r} is not valid")
    if s.persistent is not None and not 1 <= s.persistent <= MAX_PERSISTENT:
        raise _invalid(op, f"persistence timeout {s.persistent} is out of range")
    if s.persistent is not None:
        _check_netmask(op, s.key.family, s.netmask)
    if s.one_packet and s.key.proto not in (Proto.UDP, Proto.FWM):
        raise _invalid(op, "one-packet scheduling (ops) is only for udp services")
    unknown = sorted(s.sched_flags - SCHED_FLAG_BITS.keys())
    if unknown:
        raise _invalid(op, f"unknown scheduler flag {unknown[0]!r}")


def _check_netmask(op: Op, family: int, netmask: str | int | None) -> None:
    if family == 6:
        if not isinstance(netmask, int) or not 1 <= netmask <= 128:
            raise _invalid(
                op, f"IPv6 persistence netmask must be a prefix length 1..128, not {netmask!r}"
            )
        return
    try:
        IPv4Address(str(netmask))
    except ValueError:
        raise _invalid(op, f"IPv4 persistence netmask {netmask!r} is not a dotted mask") from None


def _check_dest(op: Op, key: ServiceKey, d: Dest) -> None:
    _check_port(op, d.key.port)
    if not 0 <= d.weight <= MAX_WEIGHT:
        raise _invalid(op, f"weight {d.weight} is out of range 0..{MAX_WEIGHT}", errno.ERANGE)
    for name, value in (("upper", d.upper), ("lower", d.lower)):
        if not 0 <= value <= MAX_THRESHOLD:
            raise _invalid(op, f"{name} threshold {value} is out of range", errno.ERANGE)
    if d.lower > d.upper:
        # kernel: ip_vs_add_dest/ip_vs_edit_dest refuse l_threshold > u_threshold
        raise _invalid(op, "lower threshold is above upper threshold", errno.ERANGE)
    if d.key.address.version != key.family and d.method is not Method.TUNNEL:
        # kernel: only tunnelled destinations may be of another family than the service
        raise _invalid(op, f"a {d.method} destination must be IPv{key.family} like its service")
    if not _unicast(d.key.address):
        raise _invalid(op, f"destination address {d.key.address} is not unicast")


def _unicast(address: IPAddress) -> bool:
    # kernel: ip_vs_new_dest accepts only RTN_UNICAST/RTN_LOCAL (v4) or unicast (v6)
    return not (address.is_multicast or address.is_unspecified or str(address) == "255.255.255.255")
