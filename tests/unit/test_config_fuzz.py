"""Hostile configuration files: the reader never raises anything but its located errors.

Random bytes (read as `load` reads a file: UTF-8 with surrogate escapes), random text made
of the file format's own pieces, and the real sample configurations mutated (characters
cut, inserted, flipped; lines repeated, swapped, cut short). Whatever the input, parsing
returns a Config or raises ConfigErrors whose every error has a line and a column inside
the file (or is the one "too many errors" summary), and rendering them with carets works.
Bounded in time: a fixed number of examples per property, no deadline per example.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthd.config import ConfigErrors, StaticResolver, format_errors, parse_text_with_warnings
from healthd.model import Config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "data" / "configs").glob("*.cf"))
SAMPLES = [p.read_text() for p in CONFIGS]
RESOLVER = StaticResolver(hosts={"web1": ["192.0.2.11"]}, services={"http": 80})
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

PIECES = st.sampled_from(
    [
        "virtual=", "real=", "real6=", "virtual6=", "checktype=", "service=", "request=",
        "receive=", "fallback=", "192.0.2.10:80", "[2001:db8::1]:80", "gate", "masq", "ipip",
        " ", "\t", "\n", "=", '"', "'", "#", "\\", ":", "[", "]", "\u3000", "\x00", "10",
        "yes", "no", "http", "negotiate", "external", "5", "-1", "99999999999999999999",
        "checkinterval=", "quiescent=", "command_user=", "http_listen=", "emailalert=",
    ]
)  # fmt: skip


def read(text: str, path: str = "fuzz.cf") -> Config | ConfigErrors:
    """Parse text; return the Config or the ConfigErrors. Anything else propagates."""
    try:
        config, warnings = parse_text_with_warnings(text, path, resolver=RESOLVER, hostname="lb")
    except ConfigErrors as errors:
        return errors
    assert all(w.severity == "warning" for w in warnings)
    return config


def located(text: str) -> None:
    outcome = read(text)
    if isinstance(outcome, Config):
        return
    lines = text.split("\n")
    errors = [d for d in outcome.diagnostics if d.severity == "error"]
    assert errors, "ConfigErrors without an error"
    for d in errors:
        if d.loc is None:  # only the summary of a capped list has no place
            assert d.message.startswith("too many errors"), d.message
            continue
        assert d.loc.path == "fuzz.cf"
        assert 1 <= d.loc.line <= len(lines) + 1, d
        assert d.loc.col >= 1, d
    rendered = format_errors(outcome)
    assert rendered.count("error:") >= len(errors)


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    located(data.decode("utf-8", "surrogateescape"))


@FUZZ
@given(st.lists(PIECES, max_size=60).map("".join))
def test_random_text_of_the_formats_own_pieces(text: str) -> None:
    located(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SAMPLES))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["cut", "insert", "flip", "repeat", "swap", "truncate"]))
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        lines = text.split("\n")
        row = draw(st.integers(0, len(lines) - 1))
        if kind == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        elif kind == "insert":
            text = text[:at] + draw(st.one_of(PIECES, st.text(max_size=8))) + text[at:]
        elif kind == "flip" and text:
            text = (
                text[:at]
                + chr((ord(text[at]) + draw(st.integers(1, 300))) % 0x3000)
                + text[at + 1 :]
            )
        elif kind == "repeat":
            lines.insert(row, lines[row])
            text = "\n".join(lines)
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[row], lines[other] = lines[other], lines[row]
            text = "\n".join(lines)
        else:
            text = text[:at]
    return text


@FUZZ
@given(mutated())
def test_mutated_real_configurations(text: str) -> None:
    located(text)


def test_the_samples_themselves_are_read() -> None:
    assert len(SAMPLES) >= 5
    for text in SAMPLES:
        assert isinstance(read(text), Config | ConfigErrors)
