"""The cluster directives: route announcement per virtual and the kernel's sync daemon.

healthd extensions, all in one place so the rest of the configuration code only lists them:

    announce_table=N|NAME    (virtual) the VIP's host route in routing table N while up
    announce_interface=IF    (virtual) or the VIP as an address on interface IF while up
    announce_fallback=yes|no (virtual) whether the fallback alone keeps it announced
    syncd=master|backup|both|no, syncd_interface=IF, syncd_id=N   (global)

Value syntax here is pure; the builders check names (tables, interfaces) through the
injected Resolver and report every problem at its directive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from healthd.config.values import DIGITS, Bad, token
from healthd.model import Announce, Syncd, SyncRole

if TYPE_CHECKING:
    from healthd.config.parser import Setting
    from healthd.config.resolve import Resolver
    from healthd.location import Location

ANNOUNCE: Final = ("announce_table", "announce_interface", "announce_fallback")
SYNCD: Final = ("syncd", "syncd_interface", "syncd_id")
MAX_TABLE: Final = 2**32 - 1
MAX_SYNCID: Final = 255
_NAME = re.compile(r"[A-Za-z0-9_.:-]+", re.ASCII)
_IFNAME = re.compile(r"[^\s/:]{1,15}", re.ASCII)  # the kernel's IFNAMSIZ, no '/' or ':'
ROLES: Final[dict[str, frozenset[SyncRole]]] = {
    "master": frozenset({SyncRole.MASTER}),
    "backup": frozenset({SyncRole.BACKUP}),
    "both": frozenset(SyncRole),
    "no": frozenset(),
}

Error = Callable[["Location", str], None]


def table(key: str, text: str) -> int | str:
    """Return a routing table: its number (1 to 2**32-1) or its name, resolved at build."""
    value = token(key, text)
    if DIGITS.fullmatch(value):
        number = int(value)
        if 0 < number <= MAX_TABLE:
            return number
        raise Bad(f"invalid {key} {value} (expected a table from 1 to {MAX_TABLE})", 0, len(text))
    if not _NAME.fullmatch(value):
        raise Bad(f"invalid {key} {value!r} (expected a table number or name)", 0, len(text))
    return value


def interface(key: str, text: str) -> str:
    """Return a network interface name (at most 15 characters, no '/' or ':')."""
    value = token(key, text)
    if not _IFNAME.fullmatch(value):
        raise Bad(f"invalid {key} {value!r} (expected an interface name)", 0, len(text))
    return value


def roles(key: str, text: str) -> frozenset[SyncRole]:
    """Return the sync daemon's roles: master, backup, both or no."""
    if text in ROLES:
        return ROLES[text]
    raise Bad(f"invalid {key} {text!r} (expected master, backup, both or no)", 0, len(text))


def syncid(key: str, text: str) -> int:
    """Return a sync id from 0 to 255."""
    if DIGITS.fullmatch(text) and int(text) <= MAX_SYNCID:
        return int(text)
    raise Bad(f"invalid {key} {text!r} (expected a whole number from 0 to 255)", 0, len(text))


def announce(
    settings: Mapping[str, Setting], resolver: Resolver, error: Error, *, fwmark: bool
) -> Announce | None:
    """Return the virtual's announcement, or None; report each problem at its directive."""
    present = [settings[k] for k in ANNOUNCE if k in settings]
    if not present:
        return None
    if fwmark:
        error(present[0].key_loc, "announce needs a virtual address (a firewall mark has none)")
        return None
    where, name = settings.get("announce_table"), settings.get("announce_interface")
    if where is not None and name is not None:
        error(name.key_loc, "announce_interface and announce_table exclude each other")
        return None
    if where is None and name is None:
        error(present[0].key_loc, "announce_fallback needs announce_table or announce_interface")
        return None
    fallback = settings.get("announce_fallback")
    keep = bool(fallback.value) if fallback is not None else False
    if where is not None:
        number = _table(where, resolver, error)
        return None if number is None else Announce(table=number, fallback=keep)
    assert name is not None
    if not _interface(name, resolver, error):
        return None
    return Announce(interface=str(name.value), fallback=keep)


def _table(setting: Setting, resolver: Resolver, error: Error) -> int | None:
    if isinstance(setting.value, int):
        return setting.value
    number = resolver.table(str(setting.value))
    if number is None:
        error(setting.loc, f"unknown routing table {setting.value!r} (not in rt_tables)")
    return number


def _interface(setting: Setting, resolver: Resolver, error: Error) -> bool:
    if resolver.interface(str(setting.value)):
        return True
    error(setting.loc, f"no network interface {setting.value!r} here")
    return False


def syncd(settings: Mapping[str, Setting], resolver: Resolver, error: Error) -> Syncd | None:
    """Return the sync daemon's settings, or None when syncd= is not written."""
    mode = settings.get("syncd")
    if mode is None:
        for key in SYNCD[1:]:
            if key in settings:
                error(settings[key].key_loc, f"{key} has no effect without syncd=")
        return None
    wanted = mode.value
    assert isinstance(wanted, frozenset)
    link = settings.get("syncd_interface")
    ident = settings.get("syncd_id")
    number = int(ident.value) if ident is not None else 0  # type: ignore[call-overload]
    if not wanted:
        return Syncd(frozenset(), "", number)
    if link is None:
        error(mode.key_loc, "syncd needs syncd_interface (the link the sync messages use)")
        return None
    if not _interface(link, resolver, error):
        return None
    return Syncd(frozenset(wanted), str(link.value), number)
