"""Value syntax of ldirectord.cf directives: text → typed raw values, or a located problem.

Pure: no name resolution (host and service names stay text for resolve.py) and no I/O.
Every parser reports the offending span inside the value through `Bad`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address

import checks
from healthd.config.lexer import BLANKS
from healthd.model import (
    NO_SERVICE,
    AlertStatus,
    CheckType,
    Forward,
    IPAddress,
    Proto,
    ServiceName,
)

# kernel IPVS schedulers (net/netfilter/ipvs/ip_vs_*.c)
SCHEDULERS = (
    *(
        "rr",
        "wrr",
        "lc",
        "wlc",
        "lblc",
        "lblcr",
        "dh",
        "sh",
        "sed",
        "nq",
        "fo",
        "ovf",
        "mh",
        "twos",
    ),
)
SCHED_FLAGS = ("sh-fallback", "sh-port", "mh-fallback", "mh-port", "flag-1", "flag-2", "flag-3")
FORWARDS = ", ".join(f.value for f in Forward)

DIGITS = re.compile(r"[0-9]+")  # ASCII only: ldirectord's \d on bytes matches nothing else
_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")
BLANK = f"[{re.escape(BLANKS)}]"  # one blank, in a regular expression
_ONE_QUOTED = re.compile(r'"[^"]*"')
MAY_BE_EMPTY = ("servicename", "comment")  # ldirectord: `(.*)`, the others `(.+)`
_SMTP = re.compile(r"[0-9A-Za-z._+-]+")
MAX_PORT = 65535
MAX_FWMARK = 2**32 - 1
MAX_WEIGHT = 65535


class Bad(Exception):
    """A value problem at `offset` (length `length`) inside the value text."""

    def __init__(self, message: str, offset: int = 0, length: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = length


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of a value with its offset inside the value text."""

    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class HostPort:
    """`host[:port]` as written: the address literal if it is one, else a name to resolve."""

    host: Part
    address: IPAddress | None
    port: Part | None  # None when omitted


@dataclass(frozen=True, slots=True)
class RawFallback:
    """`fallback[6]=host[:port] [gate|masq|ipip]` before resolution."""

    target: HostPort
    forward: Forward
    family: int


@dataclass(frozen=True, slots=True)
class RawReal:
    """One `real[6]=` line before resolution (a range has `last`)."""

    target: HostPort
    last: HostPort | None
    forward: Forward
    weight: int = 1
    request: str | None = None
    receive: str | None = None
    lower: int = 0
    upper: int = 0


@dataclass(frozen=True, slots=True)
class VirtualHead:
    """`virtual[6]=` value: an address with port, or a firewall mark."""

    target: HostPort | None
    fwmark: int | None


def is_digits(text: str) -> bool:
    """Return whether `text` is a non-empty run of ASCII digits."""
    return DIGITS.fullmatch(text) is not None


def unquote(text: str) -> str:
    """Return the text inside surrounding double quotes (quotes are optional)."""
    if not text.startswith('"'):
        return text
    end = text.rfind('"')
    if end == 0:
        raise Bad('unterminated string (missing closing ")', 0, 1)
    if end != len(text) - 1:
        raise Bad("unexpected text after the closing quote", end + 1, len(text) - end - 1)
    return text[1:end]


def string(key: str, text: str) -> str:
    """Return a non-empty, optionally quoted string."""
    value = unquote(text)
    if not value:
        raise Bad(f"{key} must not be empty", 0, len(text))
    return value


def raw(key: str, text: str) -> str:
    """Return the rest of the line as written, without quotes only when they enclose it all.

    ldirectord takes these values as the raw rest of the line, so a display name before an
    address (`"LVS Director" <lvs@example.com>`) or a lone quote stays as written.
    """
    value = text[1:-1] if _ONE_QUOTED.fullmatch(text) else text
    if not value and key not in MAY_BE_EMPTY:
        raise Bad(f"{key} must not be empty", 0, len(text))
    return value


def token(key: str, text: str) -> str:
    """Return a non-empty string without blanks (host names, header values)."""
    value = string(key, text)
    shift = 1 if text.startswith('"') else 0
    for i, ch in enumerate(value):
        if ch.isspace():
            raise Bad(f"invalid {key} {value!r} (no blanks allowed)", i + shift, 1)
    return value


def yes_no(key: str, text: str) -> bool:
    """Return True for `yes`, False for `no` (exact, as ldirectord)."""
    if text in ("yes", "no"):
        return text == "yes"
    raise Bad(f"{key} must be 'yes' or 'no', not {text!r}", 0, len(text))


def seconds(key: str, text: str) -> float:
    """Return a duration in seconds greater than 0 (fractions allowed)."""
    if _SECONDS.fullmatch(text) and float(text) > 0:
        return float(text)
    raise Bad(f"invalid {key} {text!r} (expected a number of seconds greater than 0)", 0, len(text))


def count(key: str, text: str) -> int:
    """Return a whole number greater than 0."""
    if DIGITS.fullmatch(text) and int(text) > 0:
        return int(text)
    raise Bad(f"invalid {key} {text!r} (expected a whole number greater than 0)", 0, len(text))


def whole(key: str, text: str) -> int:
    """Return a whole number (0 allowed)."""
    if DIGITS.fullmatch(text):
        return int(text)
    raise Bad(f"invalid {key} {text!r} (expected a whole number)", 0, len(text))


def checkport(key: str, text: str) -> int:
    """Return a port in 1..65535."""
    if DIGITS.fullmatch(text) and 1 <= int(text) <= MAX_PORT:
        return int(text)
    raise Bad(f"invalid {key} {text!r} (expected a port from 1 to 65535)", 0, len(text))


def request(key: str, text: str) -> str:
    """Return a request string with the leading `/` that ldirectord adds."""
    value = string(key, text)
    return value if value.startswith("/") else "/" + value


def checktype(key: str, text: str) -> tuple[CheckType, int]:
    """Return the checktype and, for `checktype=N`, N (negotiate every N-th round)."""
    if DIGITS.fullmatch(text):
        n = int(text)  # ldirectord: N=0 negotiates every round, the same as negotiate
        return (CheckType.COMBINED, n) if n > 0 else (CheckType.NEGOTIATE, 0)
    if text in CheckType._value2member_map_ and text != CheckType.COMBINED:
        return CheckType(text), 0
    raise Bad(
        f"unknown checktype {text!r} (expected connect, negotiate, ping, external, "
        "external-perl, on, off or a number)",
        0,
        len(text),
    )


def service(key: str, text: str) -> ServiceName:
    """Return a service name: `none` or a service kind of the check registry."""
    if text == NO_SERVICE or checks.is_service(text):
        return ServiceName(text)
    names = ", ".join(sorted([NO_SERVICE, *(k.name for k in checks.services())]))
    raise Bad(f"unknown service {text!r} (expected one of {names})", 0, len(text))


def protocol(key: str, text: str) -> Proto:
    """Return tcp, udp, sctp (healthd extension) or fwm."""
    if text in Proto._value2member_map_:
        return Proto(text)
    raise Bad(f"unknown protocol {text!r} (expected tcp, udp, sctp or fwm)", 0, len(text))


def httpmethod(key: str, text: str) -> str:
    """Return GET or HEAD (case-insensitive input)."""
    if text.upper() in ("GET", "HEAD"):
        return text.upper()
    raise Bad(f"httpmethod must be GET or HEAD, not {text!r}", 0, len(text))


def scheduler(key: str, text: str) -> str:
    """Return a scheduler name the kernel knows."""
    if text in SCHEDULERS:
        return text
    raise Bad(f"unknown scheduler {text!r} (expected {', '.join(SCHEDULERS)})", 0, len(text))


def schedflags(key: str, text: str) -> tuple[str, ...]:
    """Return the comma-separated scheduler flags, each one the kernel knows."""
    flags: list[str] = []
    offset = 0
    for flag in text.split(","):
        if flag not in SCHED_FLAGS:
            expected = ", ".join(SCHED_FLAGS)
            raise Bad(f"unknown scheduler flag {flag!r} (expected {expected})", offset, len(flag))
        flags.append(flag)
        offset += len(flag) + 1
    return tuple(flags)


def netmask(text: str, family: int) -> str:
    """Return a dotted IPv4 netmask or an IPv6 prefix length (1-128), as text."""
    if family == 6:
        if DIGITS.fullmatch(text) and 1 <= int(text) <= 128:
            return str(int(text))
        raise Bad(
            f"invalid netmask {text!r}: a prefix length between 1 and 128 is required", 0, len(text)
        )
    try:
        IPv4Network(f"0.0.0.0/{text}")
        IPv4Address(text)
    except ValueError:
        raise Bad(
            f"invalid netmask {text!r}: a dotted quad netmask is required (e.g. 255.255.255.0)",
            0,
            len(text),
        ) from None
    return text


def emails(key: str, text: str) -> tuple[str, ...]:
    """Return the comma-separated e-mail recipients (RFC 5322 display names allowed).

    ldirectord strips quotes only when they enclose the whole value, and hands the rest to
    the mailer: `"Ops, night" <ops@example.com>, dev@example.com` is two recipients.
    """
    value = raw(key, text)
    out: list[str] = []
    offset = 1 if value is not text and text.startswith('"') else 0
    for piece in _recipients(value):
        address = piece.strip(BLANKS)
        if not address:
            raise Bad("empty e-mail address in the list", offset, max(len(piece), 1))
        if "<" not in address and any(ch in BLANKS for ch in address):
            raise Bad(
                f'invalid e-mail address {address!r} (write a name as "Name" <address>)',
                offset,
                len(piece),
            )
        out.append(address)
        offset += len(piece) + 1
    return tuple(out)


def _recipients(value: str) -> list[str]:
    """Split at commas outside double quotes and angle brackets."""
    pieces, start, quoted, angled = [], 0, False, False
    for i, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif ch in "<>" and not quoted:
            angled = ch == "<"
        elif ch == "," and not quoted and not angled:
            pieces.append(value[start:i])
            start = i + 1
    return [*pieces, value[start:]]


def alertstatus(key: str, text: str) -> frozenset[AlertStatus]:
    """Return the daemon states in which alerts go out (`all`, `none` or a list)."""
    words = [w for w in re.split(f"{BLANK}*,{BLANK}*", unquote(text).strip(BLANKS)) if w]
    if "none" in words and len(words) > 1:
        raise Bad("emailalertstatus 'none' cannot be combined with other states", 0, len(text))
    states: set[AlertStatus] = set()
    for word in words:
        if word == "all":
            states.update(AlertStatus)
        elif word in AlertStatus._value2member_map_:
            states.add(AlertStatus(word))
        elif word != "none":
            raise Bad(
                f"unknown email alert status {word!r} (expected all, none, starting, running, "
                "stopping or reloading)",
                max(text.find(word), 0),
                len(word),
            )
    return frozenset(states)


def smtp(key: str, text: str) -> str:
    """Return an SMTP relay host name or IPv4 address."""
    value = unquote(text)
    if _SMTP.fullmatch(value):
        return value
    raise Bad(f"invalid SMTP server address {value!r}", 0, len(text))


def listen(key: str, text: str) -> tuple[IPAddress, int]:
    """Return `IPv4:PORT` or `[IPv6]:PORT` (address literals only; port 0 picks a free one)."""
    host, sep, port = text.rpartition(":")
    if not sep or not DIGITS.fullmatch(port) or int(port) > MAX_PORT:
        raise Bad(
            f"invalid {key} {text!r} (expected ADDRESS:PORT, e.g. 127.0.0.1:9188 or [::1]:9188)",
            0,
            len(text),
        )
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        raise Bad(
            f"invalid {key} address {host!r} (expected an IP address)", 0, len(host)
        ) from None
    if (address.version == 6) != bracketed:
        hint = "no brackets for IPv4" if bracketed else "write an IPv6 address in brackets"
        raise Bad(f"invalid {key} address {host!r} ({hint})", 0, len(host))
    return address, int(port)


def forward(word: Part) -> Forward:
    """Return the forwarding method named by `word`."""
    if word.text in Forward._value2member_map_:
        return Forward(word.text)
    raise Bad(
        f"unknown forwarding method {word.text!r} (expected gate, masq or ipip)",
        word.offset,
        len(word.text),
    )
