"""Lexer for ldirectord.cf: text → a stream of Directive and Blank items with locations.

Handles comments, indentation, quotes and the `key = value` shape only; it knows no
directive names and never raises for bad input (problems become Diagnostics). No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from healthd.errors import Diagnostic
from healthd.location import Location

TAB_WIDTH = 4  # ldirectord: every TAB counts as 4 spaces
MIN_INDENT = 4  # ldirectord: a virtual block's lines start with >= 4 spaces or a tab

_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# every character with the Unicode White_Space property but the line end: a full-width
# space (U+3000) or a no-break space after a value is a blank, as a space is
BLANKS = (
    "\t\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)


@dataclass(frozen=True, slots=True)
class Directive:
    """One `key = value` (or bare `key`) line; `value` is None for a bare word."""

    key: str
    value: str | None
    loc: Location  # the key's position; length covers the key
    value_col: int  # 1-based column of the value's first character
    indented: bool
    open_quote: int | None = None  # offset in the value of a `"` that is never closed

    @property
    def line(self) -> int:
        """Return the 1-based line number."""
        return self.loc.line

    def span(self, offset: int, length: int) -> Location:
        """Return the location of `length` characters at `offset` inside the value."""
        return Location(self.loc.path, self.loc.line, self.value_col + offset, max(length, 1))

    @property
    def value_loc(self) -> Location:
        """Return the location of the whole value (or just after the key when bare)."""
        return self.span(0, len(self.value or ""))


@dataclass(frozen=True, slots=True)
class Blank:
    """An empty (or whitespace-only) line: it ends a virtual block."""

    line: int


Item = Directive | Blank


@dataclass(slots=True)
class Lexed:
    """The lexer's output: items in file order, diagnostics, and the source lines."""

    path: str
    items: list[Item] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def split_lines(text: str) -> list[str]:
    """Return the lines of `text` without their end-of-line characters."""
    lines = text.removeprefix("\ufeff").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def indent_width(prefix: str) -> int:
    """Return the width of leading blanks: a TAB counts four (as ldirectord), others one."""
    return len(prefix) + (TAB_WIDTH - 1) * prefix.count("\t")


def strip_comment(value: str) -> tuple[str, int | None]:
    """Cut a trailing comment from a value; return (value, column of an unclosed quote).

    A `#` starts a comment at the start of the value or after whitespace, and only outside
    double quotes, so `request="/a#b"` and `passwd=ab#c` keep their `#`.
    """
    quote_at: int | None = None
    for i, ch in enumerate(value):
        if ch == '"':
            quote_at = i if quote_at is None else None
        elif ch == "#" and quote_at is None and (i == 0 or value[i - 1] in BLANKS):
            return value[:i].rstrip(BLANKS), None
    return value.rstrip(BLANKS), quote_at


def unquoted_hash(value: str) -> int | None:
    """Return the offset of the first `#` outside double quotes in a value, or None.

    The parser rejects such a `#` in a virtual block, where ldirectord cuts the line at it.
    """
    quoted = False
    for i, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            return i
    return None


def lex(text: str, path: str = "<string>") -> Lexed:
    """Split ldirectord.cf text into directives; never raises for bad input."""
    out = Lexed(path=path, lines=split_lines(text))
    for number, raw in enumerate(out.lines, start=1):
        _lex_line(out, number, raw)
    return out


def _error(out: Lexed, line: int, col: int, length: int, message: str) -> None:
    out.diagnostics.append(Diagnostic(Location(out.path, line, col, length), message))


def _lex_line(out: Lexed, number: int, raw: str) -> None:
    body = raw.lstrip(BLANKS)
    if not body.strip(BLANKS):
        out.items.append(Blank(number))
        return
    if body.startswith("#"):
        return  # ldirectord: comment lines never end a block
    prefix = raw[: len(raw) - len(body)]
    width = indent_width(prefix)
    col = len(prefix) + 1
    if 0 < width < MIN_INDENT:
        _error(
            out,
            number,
            1,
            len(prefix),
            f"indentation of {width} space{'s' if width != 1 else ''}: indent the lines "
            "of a virtual block by at least 4 spaces or a tab, global lines not at all",
        )
        return
    match = _KEY.match(body)
    if match is None:
        _error(out, number, col, 1, f"expected a directive name, found {body[0]!r}")
        return
    key = match.group()
    _lex_rest(out, number, raw, col, key, body[match.end() :], indented=width >= MIN_INDENT)


def _lex_rest(
    out: Lexed, number: int, raw: str, col: int, key: str, rest: str, *, indented: bool
) -> None:
    loc = Location(out.path, number, col, len(key))
    after = rest.lstrip(BLANKS)
    after_col = col + len(key) + (len(rest) - len(after))
    if not after or after.startswith("#"):
        out.items.append(Directive(key, None, loc, after_col, indented))
        return
    if not after.startswith("="):
        _error(out, number, after_col, 1, f"expected '=' after '{key}'")
        return
    value = after[1:].lstrip(BLANKS)
    value_col = after_col + 1 + (len(after) - 1 - len(value))
    value, open_quote = strip_comment(value)
    # the parser reports the quote: a directive that takes the raw rest of the line keeps it
    out.items.append(Directive(key, value, loc, value_col, indented, open_quote))
