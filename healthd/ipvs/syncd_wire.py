"""The IPVS sync daemon's generic-netlink messages: start, stop and list, from raw bytes.

Pure, like healthd.ipvs._wire (whose framing it uses): IPVS_CMD_NEW_DAEMON, DEL_DAEMON and
GET_DAEMON with the IPVS_DAEMON_ATTR_* attributes of include/uapi/linux/ip_vs.h, nested
under IPVS_CMD_ATTR_DAEMON. The kernel runs at most one master and one backup thread per
network namespace; each carries its multicast interface and sync id.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from healthd.ipvs import _wire as w

CMD_NEW_DAEMON: Final = 9
CMD_DEL_DAEMON: Final = 10
CMD_GET_DAEMON: Final = 11
ATTR_DAEMON: Final = 3
DAEMON_STATE, DAEMON_MCAST_IFN, DAEMON_SYNC_ID = 1, 2, 3
STATE_MASTER: Final = 1  # IP_VS_STATE_MASTER
STATE_BACKUP: Final = 2  # IP_VS_STATE_BACKUP
ROLES: Final = {"master": STATE_MASTER, "backup": STATE_BACKUP}
_U32 = struct.Struct("=I")
GENL_HEADER: Final = 4  # the genlmsghdr before the attributes (cmd, version, reserved)


@dataclass(frozen=True, slots=True, order=True)
class SyncDaemon:
    """One running (or wanted) sync daemon thread: its role, interface and sync id."""

    role: str  # "master" or "backup"
    interface: str
    syncid: int = 0

    def __str__(self) -> str:
        return f"{self.role} on {self.interface} (syncid {self.syncid})"


def start(daemon: SyncDaemon) -> tuple[int, bytes]:
    """Return the command and payload that start `daemon`."""
    nested = (
        w.attr(DAEMON_STATE, _U32.pack(ROLES[daemon.role]))
        + w.attr(DAEMON_MCAST_IFN, daemon.interface.encode() + b"\0")
        + w.attr(DAEMON_SYNC_ID, _U32.pack(daemon.syncid))
    )
    return CMD_NEW_DAEMON, w.attr(ATTR_DAEMON, nested)


def stop(role: str) -> tuple[int, bytes]:
    """Return the command and payload that stop the daemon of `role`."""
    return CMD_DEL_DAEMON, w.attr(ATTR_DAEMON, w.attr(DAEMON_STATE, _U32.pack(ROLES[role])))


def decode(body: bytes) -> SyncDaemon | None:
    """Return the daemon of one GET_DAEMON reply body (after nlmsghdr), or None."""
    nested = w.attrs(body, GENL_HEADER).get(ATTR_DAEMON)
    if nested is None:
        return None
    found = w.attrs(nested)
    state = _U32.unpack_from(found[DAEMON_STATE])[0] if DAEMON_STATE in found else 0
    role = next((name for name, value in ROLES.items() if value == state), None)
    if role is None:
        return None
    name = found.get(DAEMON_MCAST_IFN, b"").split(b"\0", 1)[0].decode(errors="replace")
    syncid = _U32.unpack_from(found[DAEMON_SYNC_ID])[0] if DAEMON_SYNC_ID in found else 0
    return SyncDaemon(role, name, syncid)
