"""ldirectord's own value rules (read_config in ldirectord.in), as Python regular expressions.

Pure. A rule is the expression ldirectord matches a directive's value with and the test it
applies; judging a value returns ldirectord's error message, or None when it accepts it.
Perl reads the file as bytes, so `\\s`, `\\d` and `\\w` are ASCII only here (re.ASCII): a
full-width space is no blank to ldirectord, and `\\s` also matches CR, VT and FF. Names
are not resolved (ldirectord resolves after its block; healthd reports those itself).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

A = re.ASCII
UNKNOWN: Final = "Unknown command"
YES_NO: Final = ("yes", "no")
SERVICES: Final = frozenset(
    [
        "dns",
        "ftp",
        "http",
        "https",
        "http_proxy",
        "imap",
        "imaps",
        "ldap",
        "ldaps",
        "nntp",
        "mysql",
        "none",
        "oracle",
        "pop",
        "pops",
        "radius",
        "pgsql",
        "sip",
        "smtp",
        "submission",
        "simpletcp",
    ]
)
CHECKTYPES: Final = frozenset(
    ["connect", "negotiate", "ping", "off", "on", "external", "external-perl"]
)
ALERT_STATES: Final = frozenset(["all", "none", "starting", "stopping", "running", "reloading"])
FORWARDS: Final = ("gate", "masq", "ipip")

# `NAME\s*=\s*VALUE` at the start of a line (global) or of the text after the indentation
DIRECTIVE = re.compile(r"([A-Za-z0-9_-]+)\s*=\s*(.*)", A)
VIRTUAL = re.compile(r"virtual(6)?\s*=\s*(.*)", A)
_HEADS = (
    re.compile(r"\d+\.\d+\.\d+\.\d+:[0-9A-Za-z_-]+", A),
    re.compile(r"[0-9A-Za-z._+-]+:[0-9A-Za-z_-]+", A),
    re.compile(r"\d+", A),
    re.compile(r"\[[0-9A-Fa-f:]+\]:[0-9A-Za-z_-]+", A),
)
# l.2019: the address part of a real line; the rest are its "flags"
_REAL = re.compile(
    r"(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-fa-f:]+\])"
    r"(->(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-fa-f:]+\]))?"
    r"(:(\d+|[A-Za-z0-9_-]+))?\s+(.*)",
    A,
)
_PAIR = re.compile(r'\s+"(.*)"[, ]\s*"(.*)"(.*)', A)

Check = Callable[[str, int], str | None]  # (value, family of the block) -> error or None


@dataclass(frozen=True, slots=True)
class Rule:
    """How ldirectord reads one directive: an optional quoted form and the value test."""

    check: Check
    quoted: bool = False  # the value must be `"..."` (else the line is an unknown command)


def _ok(value: str, family: int) -> None:
    return None


def _digits(message: str, *, zero: bool = False) -> Check:
    def check(value: str, family: int) -> str | None:
        found = re.search(r"\d+", value, A)
        return None if found and (zero or found[0] != "0") else message

    return check


def _yes_no(name: str) -> Check:
    return lambda value, family: None if value in YES_NO else f"{name} must be 'yes' or 'no'"


def _nonempty(message: str) -> Check:
    return lambda value, family: None if value else message


def _search(pattern: str, message: str) -> Check:
    return lambda value, family: None if re.search(pattern, value, A) else message


def _checktype(value: str, family: int) -> str | None:
    if re.search(r"\d+", value, A):
        return None
    word = re.search(r"[\w-]+", value, A)
    if word and word[0] in CHECKTYPES:
        return None
    return 'checktype must be "connect", "negotiate", ... or a positive number'


def _checkport(value: str, family: int) -> str | None:
    found = re.search(r"\d+", value, A)
    if not found:
        return "invalid port"
    return None if 0 < int(found[0]) < 65536 else "checkport must be in range 1..65536"


def _netmask(value: str, family: int) -> str | None:
    if family == 6:
        prefix = re.fullmatch(r"\d+", value, A) is not None and 1 <= int(value) <= 128
        return None if prefix else "invalid netmask: a prefix length between 1 and 128 is required"
    dotted = re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value, A)
    return None if dotted else "invalid netmask: dotted quad notation is required"


def _word_in(choices: frozenset[str], message: str) -> Check:
    def check(value: str, family: int) -> str | None:
        word = re.search(r"\w+", value, A)
        return None if word and word[0] in choices else message

    return check


def _httpmethod(value: str, family: int) -> str | None:
    word = re.search(r"\w+", value, A)
    return None if word and word[0].upper() in ("GET", "HEAD") else "httpmethod must be GET or HEAD"


def emailalert_value(value: str) -> str:
    """Return the value read_emailalert keeps: quotes come off only around the whole."""
    quoted = re.fullmatch(r'"([^"]*)"', value, A)
    return quoted[1] if quoted else value


def _emailalert(value: str, family: int) -> str | None:
    return None if emailalert_value(value) else "no email address specified"


def _emailalertfreq(value: str, family: int) -> str | None:
    # ldirectord: ^emailalertfreq\s*=\s*(\d*), then (\d+) on that
    return None if re.match(r"\d+", value, A) else "invalid email alert frequency"


def _alertstatus(value: str, family: int) -> str | None:
    words = re.split(r"\s*,\s*", value, flags=A)
    for word in words:
        if word not in ALERT_STATES:
            return f'invalid email alert status at: "{word}"'
    if "none" in words and any(w != "none" for w in words):
        return 'invalid email alert status: specified with "none"'
    return None


def _smtp(value: str, family: int) -> str | None:
    return None if re.match(r"[0-9A-Za-z._+-]+", value, A) else "invalid SMTP server address"


def _fallback(value: str, family: int) -> str | None:
    # parse_fallback: (\S+)(\s+(\S+))?\s*$ takes the method from the last two words
    found = re.search(r"(\S+)(\s+(\S+))?\s*$", value, A)
    method = found[3] if found else None
    if method and method not in FORWARDS:
        return "forward method must be gate, masq or ipip"
    return None if found else f"invalid fallback server: {value}"


def real_flags(value: str) -> tuple[str | None, re.Match[str] | None]:
    """Judge a real line as add_real_server does; return (error, the request/receive match).

    The match is returned when ldirectord read a per-real request and receive pair.
    """
    found = _REAL.search(value)
    if found is None:
        return "invalid address for real server (wrong format)", None
    flags = found[6]
    method = re.search(r"(\w+)(.*)", flags, A)
    if method is None or method[1] not in FORWARDS:
        return "forward method must be gate, masq or ipip", None
    flags = method[2]
    if weight := re.search(r"\s+(\d+)(.*)", flags, A):
        flags = weight[2]
    pair = _PAIR.search(flags)
    if pair is not None:
        if pair[1].startswith("/"):
            # l.2155: the match of /^\// resets $2 and $3: no receive, no thresholds, no check
            return None, pair
        flags = pair[3]
    for threshold in (r"\s+l:(\d+)(.*)", r"\s+u:(\d+)(.*)"):
        if found_threshold := re.search(threshold, flags, A):
            flags = found_threshold[2]
    if re.search(r"\S", flags, A):
        return f'Invalid real server line, around "{flags}"', pair
    return None, pair


def _real(value: str, family: int) -> str | None:
    return real_flags(value)[0]


def virtual_head(value: str, family: int) -> str | None:
    """Judge a `virtual[6]=` value as read_config does (prefix matches, trailing text ignored)."""
    for i, pattern in enumerate(_HEADS):
        if pattern.match(value):
            if i == 0 and family == 6:
                continue
            if i == 3 and family == 4:
                return 'cannot specify an IPv6 address here. please use "virtual6" instead.'
            return None
    return "invalid address for virtual server"


_COMMON: Final[dict[str, Rule]] = {
    "checktimeout": Rule(_digits("invalid check timeout")),
    "negotiatetimeout": Rule(_digits("invalid negotiate timeout")),
    "checkinterval": Rule(_digits("invalid checkinterval")),
    "checkcount": Rule(_digits("invalid check count")),
    "failurecount": Rule(_digits("invalid failure count")),
    "connecttimeout": Rule(lambda value, family: "connecttimeout directive deprecated"),
    "fallback": Rule(_fallback),
    "fallback6": Rule(_fallback),
    "fallbackcommand": Rule(_nonempty("invalid fallback command")),
    "quiescent": Rule(_yes_no("quiescent")),
    "cleanstop": Rule(_yes_no("cleanstop")),
    "emailalert": Rule(_emailalert),
    "emailalertfreq": Rule(_emailalertfreq),
    "emailalertstatus": Rule(_alertstatus),
    "smtp": Rule(_smtp),
}
GLOBAL: Final[dict[str, Rule]] = {
    **_COMMON,
    "autoreload": Rule(_yes_no("autoreload")),
    "callback": Rule(_ok, quoted=True),
    "logfile": Rule(_ok, quoted=True),
    "execute": Rule(_ok),
    "fork": Rule(_yes_no("fork")),
    "readdquiescent": Rule(_yes_no("readdquiescent")),
    "emailalertfrom": Rule(_nonempty("no email from address specified")),
    "maintenancedir": Rule(_nonempty("maintenance directory not specified")),
    "timeout": Rule(lambda value, family: "timeout directive deprecated"),
}
BLOCK: Final[dict[str, Rule]] = {
    **_COMMON,
    "real": Rule(_real),
    "real6": Rule(_real),
    "request": Rule(_nonempty("no request string specified"), quoted=True),
    "receive": Rule(_nonempty("invalid receive string"), quoted=True),
    "checktype": Rule(_checktype),
    "checkcommand": Rule(_nonempty("invalid check command")),
    "checkport": Rule(_checkport),
    "login": Rule(_nonempty("invalid login string"), quoted=True),
    "passwd": Rule(_nonempty("invalid password"), quoted=True),
    "database": Rule(_nonempty("invalid database"), quoted=True),
    "secret": Rule(_nonempty("invalid secret"), quoted=True),
    "load": Rule(_search(r"\w+", "invalid string for load testing"), quoted=True),
    "scheduler": Rule(_search(r"[a-z]+", "invalid scheduler")),
    "persistent": Rule(_digits("invalid persistent timeout", zero=True)),
    "schedflags": Rule(_search(r"\S+", "invalid sched-flags")),
    "netmask": Rule(_netmask),
    "ops": Rule(_yes_no("ops")),
    "service": Rule(_word_in(SERVICES, "service must be dns, ftp, http, ...")),
    "httpmethod": Rule(_httpmethod),
    "protocol": Rule(_ok),  # judged by judge(), which knows whether the block is a mark
    "virtualhost": Rule(_ok),
    "monitorfile": Rule(_ok),
    "servicename": Rule(_ok),
    "comment": Rule(_ok),
}
QUOTED = re.compile(r'"(.*)"', A)  # the quoted form, a prefix match: text after it is ignored


def judge(rule: Rule, name: str, value: str, family: int, *, fwmark: bool = False) -> str | None:
    """Return ldirectord's error for `name = value` under `rule`, or None if it accepts it."""
    if rule.quoted:
        quoted = QUOTED.match(value)
        if quoted is None:
            return UNKNOWN
        value = quoted[1]
    elif name in ("checkcommand", "fallbackcommand", "monitorfile"):
        quoted = QUOTED.match(value)
        value = quoted[1] if quoted else value
    if name == "protocol":
        return _protocol(value, fwmark)
    return rule.check(value, family)


def _protocol(value: str, fwmark: bool) -> str | None:
    word = re.search(r"\w+", value, A)
    if word is None:
        return "invalid protocol"
    if fwmark:
        return (
            None if word[0] == "fwm" else "protocol must be fwm if the virtual service is a fwmark"
        )
    return None if word[0] in ("tcp", "udp") else "protocol must be tcp or udp"


def supervised(line: str) -> str | None:
    """Judge a global line that starts with `supervised`."""
    if re.match(r"supervised\s*=\s*(yes|no)$", line, A) or re.match(r"supervised\s*$", line, A):
        return None
    return "supervised must be 'yes' or 'no'"
