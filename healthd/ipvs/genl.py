"""The pyroute2 edge of the netlink driver: the IPVS family lookup and network-namespace entry.

These run once per socket, where being right matters more than microseconds, so they use
pyroute2's generic-netlink controller messages (ctrlmsg) and its namespace helper rather
than a codec of our own. The hot path (every op, every dump) stays on healthd.ipvs._wire.
Only healthd.ipvs.netlink imports this module, and only when the driver opens its socket:
pyroute2 loads several hundred modules, which configtest, status and the in-memory table
never need.
"""

from __future__ import annotations

import struct
from typing import Final

from pyroute2 import netns
from pyroute2.netlink import CTRL_CMD_GETFAMILY, GENL_ID_CTRL, NLM_F_ACK, NLM_F_REQUEST, ctrlmsg

FAMILY: Final = "IPVS"
_NLMSGHDR: Final = struct.Struct("=IHHII")


def family_request(seq: int) -> bytes:
    """Return the controller's CTRL_CMD_GETFAMILY request for "IPVS" with sequence `seq`."""
    msg = ctrlmsg()
    msg["cmd"] = CTRL_CMD_GETFAMILY
    msg["version"] = 1
    msg["attrs"].append(["CTRL_ATTR_FAMILY_NAME", FAMILY])
    msg["header"]["type"] = GENL_ID_CTRL
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def family_id(body: bytes) -> int | None:
    """Return the family id of a controller reply (its body, after the netlink header)."""
    msg = ctrlmsg(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), GENL_ID_CTRL, 0, 0, 0) + body)
    msg.decode()
    found = msg.get_attr("CTRL_ATTR_FAMILY_ID")
    return int(found) if found is not None else None


def enter_netns(path: str) -> None:
    """Move the calling thread into the network namespace at `path` (never creating it)."""
    netns.setns(path, flags=0)
