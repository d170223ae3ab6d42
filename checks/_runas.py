"""Whose rights a command (checkcommand, fallbackcommand, callback) runs with.

A `RunAs` is resolved once by the daemon from its `command_user=` directive and handed to
every spawn: the child switches to that user's uid, gid and supplementary groups between
fork and exec (subprocess's own user/group/extra_groups, no preexec hook), and when the
daemon itself holds ambient capabilities the child is started through util-linux `setpriv`
with none, so no check script ever inherits CAP_NET_ADMIN. This module never imports healthd.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

SETPRIV: Final = "setpriv"
_CAP_AMBIENT_LINE: Final = "CapAmb:"


@dataclass(frozen=True, slots=True)
class RunAs:
    """The identity a command runs under; None fields keep the daemon's own."""

    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    drop_caps: str | None = None  # path of setpriv, when children must lose ambient caps

    def argv(self, argv: Sequence[str]) -> list[str]:
        """Return argv, behind setpriv when the daemon's ambient capabilities must be dropped."""
        if self.drop_caps is None:
            return list(argv)
        return [self.drop_caps, "--inh-caps=-all", "--ambient-caps=-all", "--", *argv]

    def spawn_options(self) -> dict[str, object]:
        """Return the keyword arguments of subprocess/asyncio that switch the child's user."""
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def __str__(self) -> str:
        return "the daemon's own user" if self.uid is None else f"uid {self.uid} gid {self.gid}"


SAME: Final = RunAs()  # run as the daemon itself


def ambient_caps(status_path: str = "/proc/self/status") -> int:
    """Return this process's ambient capability mask (0 when unknown)."""
    try:
        with open(status_path, encoding="ascii") as f:
            for line in f:
                if line.startswith(_CAP_AMBIENT_LINE):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def cap_dropper() -> str | None:
    """Return setpriv's path when this process holds ambient capabilities, else None."""
    if ambient_caps() == 0:
        return None
    return shutil.which(SETPRIV)


_current: RunAs = SAME


def current() -> RunAs:
    """Return the identity commands run under now (set by the daemon from command_user=)."""
    return _current


def use(run_as: RunAs) -> None:
    """Make `run_as` the identity of every command spawned from now on.

    One identity per process, like the process's own uid: the daemon sets it at start and
    on each reload, before any check or hook of the new configuration runs.
    """
    global _current
    _current = run_as
