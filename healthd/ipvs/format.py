"""Text forms of an IPVS table: ipvsadm's rule syntax (`ipvsadm -Sn`) and plain data.

Pure functions, no I/O. The ipvsadm form is byte-for-byte what ipvsadm 1.31 prints for
the same kernel table, so it can be fed to `ipvsadm -R`; the data form carries every field
of the value types, counters included, for json and yaml.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

from healthd.ipvs.types import (
    Counters,
    Dest,
    IPAddress,
    Method,
    Protocol,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)

T = TypeVar("T")

_PROTO_NUM = {Protocol.TCP: 6, Protocol.UDP: 17, Protocol.SCTP: 132, Protocol.FWM: 0}
_PROTO_OPTION = {Protocol.TCP: "-t", Protocol.UDP: "-u", Protocol.SCTP: "--sctp-service"}
_METHOD_SWITCH = {Method.MASQ: "-m", Method.TUNNEL: "-i", Method.ROUTE: "-g"}
_AF = {4: 2, 6: 10}  # AF_INET, AF_INET6


# --- ipvsadm's ordering, quirks included --------------------------------------------------


def _s32(value: int) -> int:
    """Return value as C converts a wrapped unsigned 32-bit difference to int."""
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def _words(address: IPAddress | None, family: int) -> list[int]:
    """Return the address union as ipvsadm reads it: one word for v4, four for v6."""
    raw = address.packed if address is not None else b""
    raw = raw.ljust(16, b"\0")
    count = 4 if family == 6 else 1
    return [int.from_bytes(raw[i * 4 : i * 4 + 4], "big") for i in range(count)]


def _cmp_addr(a: IPAddress | None, b: IPAddress | None, family: int) -> int:
    # ipvsadm: r = ntohl(a) - ntohl(b) on unsigned words, kept in an int (it wraps)
    r = 0
    for wa, wb in zip(_words(a, family), _words(b, family), strict=True):
        r = _s32(wa - wb)
        if r:
            break
    return r


def _cmp_services(a: ServiceKey, b: ServiceKey) -> int:
    # libipvs ipvs_cmp_services: fwmark, af, protocol, address, port
    r = _s32(a.fwmark - b.fwmark)
    r = r or _AF[a.family] - _AF[b.family]
    r = r or _PROTO_NUM[a.proto] - _PROTO_NUM[b.proto]
    r = r or _cmp_addr(a.address, b.address, a.family)
    return r or a.port - b.port


def _cmp_dests(a: Dest, b: Dest) -> int:
    # libipvs ipvs_cmp_dests: address (as the first one's family), then port
    r = _cmp_addr(a.key.address, b.key.address, a.key.address.version)
    return r or a.key.port - b.key.port


def c_qsort(items: Sequence[T], cmp: Callable[[T, T], int]) -> list[T]:
    """Return items sorted as glibc's qsort (a top-down merge sort) sorts them.

    ipvsadm's comparators are not transitive (wrapped differences), so only the same
    algorithm over the same input order gives the same output.
    """
    if len(items) <= 1:
        return list(items)
    half = len(items) // 2
    left, right = c_qsort(items[:half], cmp), c_qsort(items[half:], cmp)
    out: list[T] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out + left[i:] + right[j:]


# --- ipvsadm -Sn ---------------------------------------------------------------------------


def _endpoint(address: IPAddress | None, port: int) -> str:
    if address is not None and address.version == 6:
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def _svc_name(key: ServiceKey) -> str:
    if key.proto is Protocol.FWM:
        return f"-f {key.fwmark} -6" if key.family == 6 else f"-f {key.fwmark}"
    return f"{_PROTO_OPTION[key.proto]} {_endpoint(key.address, key.port)}"


def _sched_flags(service: Service) -> str:
    # ipvsadm print_sched_flags: sh and mh name two bits, other schedulers name three
    bits = service.flag_bits
    if service.scheduler in ("sh", "mh"):
        names = [(0x08, f"{service.scheduler}-fallback"), (0x10, f"{service.scheduler}-port")]
    else:
        names = [(0x08, "flag-1"), (0x10, "flag-2"), (0x20, "flag-3")]
    return ",".join(name for bit, name in names if bits & bit)


def service_rule(service: Service) -> str:
    """Return the `-A` line ipvsadm -Sn prints for a service."""
    line = f"-A {_svc_name(service.key)} -s {service.scheduler}"
    if service.persistent is not None:
        line += f" -p {service.persistent}"
        full = 128 if service.key.family == 6 else "255.255.255.255"
        if service.netmask is not None and service.netmask != full:
            line += f" -M {service.netmask}"
    if service.one_packet:
        line += " -o"
    if service.flag_bits:
        line += f" -b {_sched_flags(service)}"
    return line


def dest_rule(key: ServiceKey, dest: Dest) -> str:
    """Return the `-a` line ipvsadm -Sn prints for a destination of a service."""
    line = (
        f"-a {_svc_name(key)} -r {_endpoint(dest.key.address, dest.key.port)} "
        f"{_METHOD_SWITCH[dest.method]} -w {dest.weight}"
    )
    if dest.method is Method.TUNNEL:
        line += " --tun-type ipip"  # ipvsadm: tunnel type 0, the kernel's default
    return line


def ipvsadm_order(table: Table) -> list[tuple[ServiceEntry, list[Dest]]]:
    """Return services and their destinations in the order ipvsadm lists them."""
    return [
        (table.services[key], c_qsort(list(table.services[key].dests.values()), _cmp_dests))
        for key in c_qsort(list(table.services), _cmp_services)
    ]


def to_ipvsadm(table: Table) -> str:
    """Return the table as `ipvsadm -Sn` prints it (empty for an empty table)."""
    lines: list[str] = []
    for entry, dests in ipvsadm_order(table):
        lines.append(service_rule(entry.service))
        lines.extend(dest_rule(entry.service.key, dest) for dest in dests)
    return "".join(line + "\n" for line in lines)


# --- json / yaml data ----------------------------------------------------------------------


def _counters(counters: Counters | None) -> dict[str, int]:
    return asdict(counters if counters is not None else Counters())


def _service_data(entry: ServiceEntry) -> dict[str, Any]:
    s, k = entry.service, entry.service.key
    return {
        "name": str(k),
        "proto": str(k.proto),
        "address": str(k.address) if k.address is not None else None,
        "port": k.port,
        "fwmark": k.fwmark,
        "family": k.family,
        "scheduler": s.scheduler,
        "persistent": s.persistent,
        "netmask": s.netmask,
        "one_packet": s.one_packet,
        "sched_flags": sorted(s.sched_flags),
        "counters": _counters(entry.counters),
        "dests": [
            {
                "address": str(d.key.address),
                "port": d.key.port,
                "weight": d.weight,
                "method": str(d.method),
                "upper": d.upper,
                "lower": d.lower,
                "counters": _counters(entry.dest_counters.get(d.key)),
            }
            for d in entry.dests.values()
        ],
    }


def to_data(table: Table) -> dict[str, Any]:
    """Return the table as plain data (for json and yaml), in the table's own order."""
    return {"services": [_service_data(e) for e in table.services.values()]}
