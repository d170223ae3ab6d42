"""command_user=: the user external checks, fallbackcommand and callback run as.

Resolves the directive against the password database and the daemon's own uid into a
`checks._runas.RunAs`: by default a root daemon runs commands as `nobody` (never as root
unless `command_user=root` says so); a daemon that is not root runs them as itself and
cannot switch to anyone else (a clear error then). No asyncio here.
"""

from __future__ import annotations

import os
import pwd
from typing import Final

from checks import _runas
from checks._runas import RunAs
from healthd.errors import HealthdError

DEFAULT_USER: Final = "nobody"
NOBODY_ID: Final = 65534  # the overflow uid/gid, when no `nobody` entry exists


class PrivilegeError(HealthdError):
    """command_user= names a user that does not exist or that healthd cannot become."""


def _entry(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, OverflowError, ValueError):  # ValueError: a NUL in the name
        return None


def known(name: str) -> bool:
    """Return whether `name` (a user name or a numeric uid) is in the password database."""
    return name.isdigit() or _entry(name) is not None


def _ids(name: str) -> tuple[int, int, list[int]]:
    """Return uid, gid and supplementary groups of a user; raise PrivilegeError if unknown."""
    entry = _entry(name)
    if entry is None:
        if name.isdigit():
            return int(name), int(name), []
        if name == DEFAULT_USER:
            return NOBODY_ID, NOBODY_ID, []
        raise PrivilegeError(f"command_user={name}: no such user")
    try:
        groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    except OSError:
        groups = [entry.pw_gid]
    return entry.pw_uid, entry.pw_gid, groups


def resolve(name: str | None, *, euid: int | None = None) -> RunAs:
    """Return the identity commands run under for `command_user=name` in this process."""
    euid = os.geteuid() if euid is None else euid
    if name is None:
        name = DEFAULT_USER if euid == 0 else str(euid)
    uid, gid, groups = _ids(name)
    if uid != euid and euid != 0:
        raise PrivilegeError(
            f"command_user={name}: healthd runs as uid {euid} and cannot run commands as uid {uid}"
        )
    if uid == euid:
        return RunAs(drop_caps=_runas.cap_dropper())
    return RunAs(uid, gid, tuple(sorted(set(groups))), _runas.cap_dropper())


def apply(name: str | None) -> RunAs:
    """Resolve `command_user=name` and make it the identity of every command from now on."""
    run_as = resolve(name)
    _runas.use(run_as)
    return run_as
