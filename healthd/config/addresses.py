"""Address syntax of ldirectord.cf values: `host[:port]`, `[v6]:port`, virtual heads, fallbacks.

Pure: literals are checked here (no octal, no leading zeros, brackets for IPv6); names stay
text for resolve.py. Problems are raised as values.Bad with their span.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address, ip_address

from healthd.config.values import (
    BLANK,
    DIGITS,
    MAX_FWMARK,
    MAX_PORT,
    Bad,
    HostPort,
    Part,
    RawFallback,
    VirtualHead,
    forward,
)
from healthd.model import Forward, IPAddress

_HOSTNAME = re.compile(r"[A-Za-z0-9._-]+")
_PORTNAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_WORD = re.compile(f"(?:(?!{BLANK}).)+")


def _ipv4_or_name(text: str, offset: int) -> IPAddress | None:
    """Return the IPv4 literal, or None for a host name; reject malformed literals."""
    for i, ch in enumerate(text):
        if not _HOSTNAME.fullmatch(ch):
            raise Bad(f"invalid character {ch!r} in address {text!r}", offset + i, 1)
    if not re.fullmatch(r"[0-9.]+", text):
        return None
    parts = text.split(".")
    if (
        len(parts) == 4
        and all(DIGITS.fullmatch(p) for p in parts)
        and any(len(p) > 1 and p.startswith("0") for p in parts)
    ):
        raise Bad(
            f"invalid IPv4 address {text!r}: leading zeros are ambiguous (ldirectord reads "
            "them as octal)",
            offset,
            len(text),
        )
    try:
        return IPv4Address(text)
    except ValueError:
        raise Bad(f"invalid IPv4 address {text!r}", offset, len(text)) from None


def _bracketed(text: str, offset: int, family: int, what: str) -> tuple[IPAddress, int]:
    end = text.find("]")
    if end < 0:
        raise Bad("missing ']' after the IPv6 address", offset, len(text))
    inner = text[1:end]
    try:
        address = ip_address(inner)
    except ValueError:
        raise Bad(f"invalid IPv6 address {inner!r}", offset + 1, max(len(inner), 1)) from None
    if not isinstance(address, IPv6Address):
        raise Bad(f"invalid IPv6 address {inner!r}", offset + 1, len(inner))
    if family == 4:
        raise Bad(f'cannot specify an IPv6 address here; use "{what}6" instead', offset, end + 1)
    return address, end + 1


def hostport(text: str, offset: int, family: int, what: str) -> HostPort:
    """Parse `host[:port]`, `[v6][:port]` (family 6) at `offset` inside the value."""
    if text.startswith("["):
        address, end = _bracketed(text, offset, family, what)
        host = Part(text[:end], offset)
        rest = text[end:]
        if rest and not rest.startswith(":"):
            raise Bad(f"unexpected {rest!r} after the address", offset + end, len(rest))
        return HostPort(host, address, _port(rest[1:], offset + end + 1) if rest else None)
    if family == 6 and text.count(":") > 1:
        raise Bad(
            f"an IPv6 address needs brackets: [{text}] (or [ADDRESS]:PORT)", offset, len(text)
        )
    name, sep, port = text.partition(":")
    if not name:
        raise Bad("missing address before ':'", offset, 1)
    literal = _ipv4_or_name(name, offset)
    if literal is not None and family == 6:
        raise Bad(f'cannot specify an IPv4 address here; use "{what}" instead', offset, len(name))
    return HostPort(
        Part(name, offset), literal, _port(port, offset + len(name) + 1) if sep else None
    )


def _port(text: str, offset: int) -> Part:
    if DIGITS.fullmatch(text):
        if int(text) > MAX_PORT:
            raise Bad(f"port {text} is out of range (0-65535)", offset, len(text))
        return Part(text, offset)
    if _PORTNAME.fullmatch(text):
        return Part(text, offset)
    raise Bad(f"invalid port {text!r}", offset, max(len(text), 1))


def virtual_head(text: str, family: int) -> VirtualHead:
    """Parse a `virtual[6]=` value: `host:port`, `[v6]:port` or a firewall mark."""
    words = _words(text)
    first = words[0].text if words else text
    if len(words) > 1:
        at = words[1].offset
        raise Bad("unexpected text after the virtual address", at, len(text) - at)
    if DIGITS.fullmatch(first):
        mark = int(first)
        if not 1 <= mark <= MAX_FWMARK:
            raise Bad(f"invalid firewall mark {first} (expected 1-{MAX_FWMARK})", 0, len(first))
        return VirtualHead(None, mark)
    target = hostport(first, 0, family, "virtual")
    if target.port is None:
        raise Bad(
            f"virtual address {first!r} has no port (ldirectord reads this as a firewall "
            "mark); write ADDRESS:PORT, or a plain number for a firewall mark",
            0,
            len(first),
        )
    return VirtualHead(target, None)


def fallback(text: str, family: int) -> RawFallback:
    """Parse `host[:port] [gate|masq|ipip]`."""
    words = _words(text)
    if not words:
        raise Bad("fallback needs an address", 0, 1)
    if len(words) > 2:
        raise Bad(
            f"unexpected {words[2].text!r} after the forwarding method",
            words[2].offset,
            len(words[2].text),
        )
    target = hostport(words[0].text, words[0].offset, family, "fallback")
    method = forward(words[1]) if len(words) == 2 else Forward.GATE
    return RawFallback(target, method, family)


def _words(text: str) -> list[Part]:
    return [Part(m.group(), m.start()) for m in _WORD.finditer(text)]
