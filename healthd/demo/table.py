"""The IPVS table as `ipvsadm -Ln` shows it, for the demo's printouts. Pure: no I/O."""

from __future__ import annotations

from checks.base import host_text
from healthd.ipvs.types import Method, Protocol, Table

_FORWARD = {Method.MASQ: "Masq", Method.ROUTE: "Route", Method.TUNNEL: "Tunnel"}


def render(table: Table) -> str:
    """Return the table in ipvsadm -Ln's layout (services and destinations, no counters)."""
    lines = [
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    ]
    for key, entry in table.services.items():
        service = entry.service
        if key.proto is Protocol.FWM:
            name = f"FWM  {key.fwmark}"
        else:
            assert key.address is not None
            name = f"{str(key.proto).upper():<4} {host_text(key.address)}:{key.port}"
        head = f"{name} {service.scheduler}"
        if service.persistent is not None:
            head += f" persistent {service.persistent}"
        lines.append(head)
        for dest in entry.dests.values():
            forward = _FORWARD[dest.method]
            lines.append(f"  -> {dest.key!s:<28} {forward:<7} {dest.weight:<6} {0:<10} {0}")
    return "\n".join(lines)
