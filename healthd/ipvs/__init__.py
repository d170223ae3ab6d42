"""Access to the kernel's IPVS table: value types, the driver protocol and its drivers.

The drivers themselves (healthd.ipvs.fake, healthd.ipvs.netlink) are imported on demand,
so that importing the types never loads pyroute2.
"""

from __future__ import annotations

from healthd.ipvs.driver import IPVSDriver, apply_all
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

__all__ = [
    "AddDest",
    "AddService",
    "Counters",
    "DelDest",
    "DelService",
    "Dest",
    "DestKey",
    "EditDest",
    "EditService",
    "IPVSDriver",
    "Method",
    "Op",
    "Protocol",
    "Service",
    "ServiceEntry",
    "ServiceKey",
    "Table",
    "apply_all",
]
