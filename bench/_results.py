"""bench/RESULTS.md: each benchmark rewrites only its own generated block.

A block sits between two HTML comments (`begin`, `end`) under the benchmark's `## ` heading;
what is written by hand around it (the readings) stays. A missing block goes under its
heading, a missing heading at the end of the file.
"""

from __future__ import annotations

from pathlib import Path


def write_block(path: Path, section: str, begin: str, end: str, body: list[str]) -> None:
    """Replace (or add) the block between begin and end under section with body's lines."""
    block = "\n".join([begin, *body, end])
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    elif section in text:
        head, rest = text.split(section, 1)
        text = f"{head}{section}\n\n{block}\n{rest.lstrip(chr(10))}"
    else:
        text = f"{text.rstrip()}\n\n{section}\n\n{block}\n"
    path.write_text(text)
