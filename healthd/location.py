"""Source locations in configuration files and their compiler-style rendering.

Pure: formats text, reads no files (the caller passes the source line).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A 1-based line and column in a named file; `length` is the span the caret covers."""

    path: str
    line: int
    col: int = 1
    length: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


def render(loc: Location, severity: str, message: str, source_line: str | None) -> str:
    """Return `path:line:col: severity: message`, the source line and a caret under the span."""
    head = f"{loc}: {severity}: {message}"
    if source_line is None:
        return head
    # line and prefix expand tabs to the same 4-column stops, so the caret lines up
    text = source_line.rstrip("\n").expandtabs(4)
    prefix = source_line[: max(loc.col - 1, 0)].expandtabs(4)
    caret = " " * len(prefix) + "^" + "~" * max(loc.length - 1, 0)
    return f"{head}\n    {text}\n    {caret}"
