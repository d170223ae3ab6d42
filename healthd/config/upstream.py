"""Where ldirectord itself would read a file differently: warnings for a safe roll-back.

Pure. Walks the text as ldirectord's read_config does (virtual blocks, `#` cut in blocks,
tabs made 4 spaces, ASCII blanks only), judges each line with ldirectord's own rules
(healthd.config.perl), and for every line that healthd accepts reports a warning when
ldirectord would reject it, or would read it differently. `configtest --strict` makes these
warnings errors, for clusters that must be able to go back to ldirectord.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from healthd.config import perl
from healthd.config import values as v
from healthd.config.lexer import BLANKS, Directive
from healthd.errors import Diagnostic
from healthd.location import Location

A = re.ASCII
REJECT: Final = "ldirectord would reject this line"
DIFFERS: Final = "ldirectord reads this line differently"
HEALTHD_ONLY: Final = frozenset(
    (
        "rise",
        "resync_interval",
        "max_in_flight",
        "tls_verify",
        "tls_cafile",
        "tls_hostname",
        "http_listen",
        "state_file",
        "announce_table",
        "announce_interface",
        "announce_fallback",
        "syncd",
        "syncd_interface",
        "syncd_id",
        "command_user",
    )
)
_WIDE: Final = "".join(ch for ch in BLANKS if not ch.isascii())
_RAW_GLOBAL: Final = ("emailalertfrom", "execute", "maintenancedir", "fallbackcommand")
_RAW_BLOCK: Final = ("servicename", "comment", "fallbackcommand")
_FRACTIONS: Final = ("checktimeout", "negotiatetimeout", "checkinterval")
_STRINGS: Final = frozenset(
    [
        "request",
        "receive",
        "login",
        "passwd",
        "database",
        "secret",
        "checkcommand",
        "servicename",
        "comment",
        "fallbackcommand",
        "monitorfile",
        "virtualhost",
        "emailalert",
    ]
)


def perl_lines(text: str) -> list[str]:
    """Return the lines as Perl's `<FH>` gives them: a BOM and carriage returns kept."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@dataclass(slots=True)
class _Walker:
    path: str
    directives: Mapping[int, Directive]
    error_lines: set[int]
    fork: bool
    found: list[Diagnostic] = field(default_factory=list)

    def warn(self, number: int, line: str, at: int, message: str) -> None:
        if number in self.error_lines:
            return  # healthd refuses the line already
        loc = Location(self.path, number, max(at, 0) + 1, 1)
        self.found.append(Diagnostic(loc, message, "warning", ldirectord=True))

    def reject(
        self, number: int, line: str, name: str, value: str, error: str, *, block: bool = False
    ) -> None:
        hint, at = _hint(line, name, value, error, block)
        reason = f"{error}: {hint}" if hint else error
        self.warn(number, line, at, f"{REJECT} ({reason})")


def differences(
    text: str,
    path: str,
    directives: Mapping[int, Directive],
    error_lines: set[int],
    *,
    fork: bool,
) -> list[Diagnostic]:
    """Return a warning for every line healthd accepts that ldirectord rejects or misreads."""
    w = _Walker(path, directives, error_lines, fork)
    lines = perl_lines(text)
    if lines and lines[0].startswith("\ufeff"):
        # Perl reads the mark as part of the first line; the rest is judged without it
        w.warn(1, "", 0, f"{REJECT} (the file starts with a byte-order mark; save it without)")
        lines[0] = lines[0][1:]
    i = 0
    while i < len(lines):
        head = perl.VIRTUAL.match(lines[i])
        if head is None:
            _global_line(w, i + 1, lines[i])
            i += 1
            continue
        family = 6 if head[1] else 4
        if error := perl.virtual_head(head[2], family):
            w.reject(i + 1, lines[i], "virtual", head[2], error)
        fwmark = re.match(r"\d+(?![\d.]*:)", head[2], A) is not None
        i = _block(w, lines, i + 1, family, fwmark)
    return w.found


def _block(w: _Walker, lines: list[str], i: int, family: int, fwmark: bool) -> int:
    """Judge the lines of a virtual block from index `i`; return the index after it."""
    while i < len(lines):
        line = lines[i]
        if re.match(r"\s*#", line, A):
            i += 1
            continue
        body = re.match(r" {4,}(.+)", re.sub(r"#.*", "", line).replace("\t", "    "))
        if body is None and _indented(w, i + 1):
            # ldirectord ends the block (its indentation is ASCII only) where healthd does
            # not: one warning here, then the block goes on as healthd reads it
            w.reject(i + 1, line, "", line, perl.UNKNOWN, block=True)
        elif body is None:
            return i  # the block ends; ldirectord reads this line again as a global one
        else:
            _block_line(w, i + 1, line, body[1], family, fwmark)
        i += 1
    return i


def _indented(w: _Walker, number: int) -> bool:
    d = w.directives.get(number)
    return d is not None and d.indented


def _global_line(w: _Walker, number: int, line: str) -> None:
    if re.match(r"\s*$", line, A) or re.match(r"\s*#", line, A):
        return
    if line.startswith("supervised"):
        if error := perl.supervised(line):
            w.reject(number, line, "supervised", line, error)
        return
    found = perl.DIRECTIVE.match(line)
    name, value = (found[1], found[2]) if found else ("", line)
    rule = perl.GLOBAL.get(name)
    error = perl.UNKNOWN if rule is None else perl.judge(rule, name, value, 4)
    if error:
        w.reject(number, line, name, value, error)
    else:
        _compare(w, number, line, name, value, _RAW_GLOBAL)


def _block_line(w: _Walker, number: int, line: str, rcmd: str, family: int, fwmark: bool) -> None:
    found = perl.DIRECTIVE.match(rcmd)
    name, value = (found[1], found[2]) if found else ("", rcmd)
    rule = perl.BLOCK.get(name)
    error = perl.UNKNOWN if rule is None else perl.judge(rule, name, value, family, fwmark=fwmark)
    if error:
        w.reject(number, line, name, value, error, block=True)
        return
    _compare(w, number, line, name, value, _RAW_BLOCK)
    if name in ("real", "real6"):
        _real_pair(w, number, line, value)
    elif name == "checkinterval" and not w.fork:
        w.warn(
            number,
            line,
            _index(line, name),
            f"{DIFFERS} (ldirectord ignores a virtual's checkinterval unless fork=yes; "
            "healthd honours it)",
        )
    d = w.directives.get(number)
    if d is not None and name in _STRINGS and "\t" in (d.value or ""):
        at = d.value_col - 1 + (d.value or "").index("\t")
        w.warn(number, line, at, f"{DIFFERS} (ldirectord reads each tab in it as 4 spaces)")


def _compare(
    w: _Walker, number: int, line: str, name: str, value: str, raw_names: tuple[str, ...]
) -> None:
    """Warn where ldirectord's value differs from healthd's for the same accepted line."""
    d = w.directives.get(number)
    if d is None or d.key != name or d.value is None:
        return
    at = d.value_col - 1
    if name in raw_names or name == "emailalert":
        theirs = perl.emailalert_value(value) if name == "emailalert" else value
        try:
            ours = v.raw(name, d.value)
        except v.Bad:
            return  # healthd refuses it

        if name == "fallbackcommand":  # the shell removes enclosing quotes for ldirectord
            theirs = _unquoted(perl.QUOTED.match(theirs), theirs)
        if theirs.rstrip(" \t\r\v\f") != ours:
            why = "; it keeps the comment" if "#" in theirs[len(ours) :] else ""
            why = "; it keeps the quotes" if theirs == f'"{ours}"' else why
            w.warn(number, line, at, f"{DIFFERS} (ldirectord reads {name} as {theirs!r}{why})")
    elif name in _FRACTIONS and "." in d.value:
        digits = re.search(r"\d+", value, A)
        assert digits is not None  # ldirectord accepted it
        w.warn(
            number,
            line,
            at,
            f"{DIFFERS} (ldirectord reads {name}={digits[0]}: it takes the digits before the '.')",
        )


def _unquoted(quoted: re.Match[str] | None, text: str) -> str:
    return quoted[1] if quoted and quoted.end() == len(text) else text


def _real_pair(w: _Walker, number: int, line: str, value: str) -> None:
    error, pair = perl.real_flags(value)
    if error is None and pair is not None and pair[1].startswith("/"):
        w.warn(
            number,
            line,
            line.find('"'),
            f"{DIFFERS} (ldirectord drops the per-real receive string, and any l:/u: after "
            "it, when the request starts with '/', and checks with the virtual's request and "
            "receive; write the request without the leading '/' for both to read it alike)",
        )


def _index(line: str, text: str) -> int:
    return max(line.find(text), 0)


def _hint(line: str, name: str, value: str, error: str, block: bool) -> tuple[str, int]:
    """Return why ldirectord rejects the line, in healthd's terms, and where (0-based)."""
    wide = next((i for i, ch in enumerate(line) if ch in _WIDE), None)
    if wide is not None:
        ch = line[wide]
        what = f"U+{ord(ch):04X} {unicodedata.name(ch, 'SPACE')}"
        return f"{what} is not a blank to ldirectord; use a space", wide
    if error == perl.UNKNOWN and name in HEALTHD_ONLY:
        return f"{name!r} is healthd's own directive", _index(line, name)
    if error == perl.UNKNOWN and not name and not value.strip(" \t\r"):
        return "a line of blanks inside a virtual block; make it empty", 0
    if block and "#" in line:
        kept = " and keeps the blanks before it" if value != value.rstrip(" \t") else ""
        return f"it cuts the line at the '#', inside quotes too{kept}", line.find("#")
    rule = perl.BLOCK.get(name) or perl.GLOBAL.get(name)
    if error == perl.UNKNOWN and rule is not None and rule.quoted:
        return f'it needs the value in double quotes: {name}="..."', _index(line, value)
    if "#" in value:
        return "the comment is part of the value there", line.find("#")
    if value.endswith("\r"):
        return "it keeps the carriage return of a CRLF line end; save with LF line ends", 0
    if value != value.rstrip(" \t\v\f"):
        return "it keeps the blanks after the value", _index(line, value.rstrip(" \t\v\f"))
    return "", _index(line, name) if name else 0
