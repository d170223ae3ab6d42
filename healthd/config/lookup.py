"""Where the configuration file is: ldirectord's name lookup (the only filesystem probe).

The name as given, then /etc/ha.d/NAME, then /etc/ha.d/conf/NAME; the default name is
ldirectord.cf. The result is an absolute path, so a reload after chdir still finds it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from healthd.errors import HealthdError

DEFAULT_NAME = "ldirectord.cf"
SEARCH_DIRS: tuple[str, ...] = ("/etc/ha.d", "/etc/ha.d/conf")


class ConfigNotFoundError(HealthdError):
    """No configuration file of that name exists (the daemon exits 1, as ldirectord)."""

    def __init__(self, name: str, tried: Sequence[str]) -> None:
        super().__init__(f"config file {name} not found (tried {', '.join(tried)})")
        self.name = name
        self.tried = tuple(tried)


def candidates(name: str | None, search_dirs: Sequence[str] = SEARCH_DIRS) -> list[str]:
    """Return the paths tried for `name`, in order."""
    name = name or DEFAULT_NAME
    if os.path.isabs(name):
        return [name]
    return [name, *(os.path.join(d, name) for d in search_dirs)]


def lookup(name: str | None, search_dirs: Sequence[str] = SEARCH_DIRS) -> str:
    """Return the absolute path of the configuration file `name` (None: ldirectord.cf)."""
    tried = candidates(name, search_dirs)
    for path in tried:
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise ConfigNotFoundError(name or DEFAULT_NAME, tried)
