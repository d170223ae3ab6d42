"""`real=` / `real6=` lines: `addr[->addr][:port] METHOD [weight] ["req", "recv"] [l:N] [u:N]`.

Pure: names stay text for the builder to resolve. Problems are raised as values.Bad with
their span inside the value.
"""

from __future__ import annotations

import re
from typing import Final

from healthd.config import addresses as a
from healthd.config import values as v

MAX_RANGE: Final = 65536  # addresses one `real=a->b` may expand to

_TOKEN = re.compile(f'"[^"]*"?|,|(?:(?!{v.BLANK})[^",])+')
_THRESHOLD = re.compile(r"([lu]):([0-9]+)")
# words ldirectord skips before the weight that say what they are; read with its meaning
WEIGHT_WORDS: Final = ("weight", "-w", "--weight", "w")
_WEIGHT_OPTION = re.compile(r"(?:weight|-{0,2}w)[=:]([0-9]+)")


def _tokens(text: str) -> list[v.Part]:
    return [v.Part(m.group(), m.start()) for m in _TOKEN.finditer(text)]


def parse_real(text: str, family: int) -> v.RawReal:
    """Parse `addr[->addr][:port] gate|masq|ipip [weight] ["req", "recv"] [l:N] [u:N]`."""
    words = _tokens(text)
    if not words:
        raise v.Bad("real needs an address and a forwarding method", 0, 1)
    target, last = _real_address(words[0], family)
    if len(words) < 2:
        end = len(text)
        raise v.Bad("missing forwarding method after the address (gate, masq or ipip)", end, 1)
    method = v.forward(words[1])
    rest = words[2:]
    weight = _weight(rest, method.value)
    req, recv = _request_receive(rest, len(text))
    lower, upper = _thresholds(rest)
    if rest:
        raise v.Bad(
            f"unexpected {rest[0].text!r} in the real server line",
            rest[0].offset,
            len(rest[0].text),
        )
    return v.RawReal(target, last, method, weight, req, recv, lower, upper)


def _real_address(word: v.Part, family: int) -> tuple[v.HostPort, v.HostPort | None]:
    first, arrow, second = word.text.partition("->")
    if not arrow:
        return a.hostport(word.text, word.offset, family, "real"), None
    if family == 6:
        raise v.Bad("address ranges are supported for IPv4 only", word.offset, len(word.text))
    start = a.hostport(first, word.offset, family, "real")
    if start.port is not None:
        raise v.Bad(
            "write the port after the last address of a range: A->B:PORT",
            start.port.offset - 1,
            len(start.port.text) + 1,
        )
    end = a.hostport(second, word.offset + len(first) + 2, family, "real")
    return v.HostPort(start.host, start.address, end.port), end


def _weight(rest: list[v.Part], method: str) -> int:
    if not rest or rest[0].text.startswith('"') or _THRESHOLD.fullmatch(rest[0].text):
        return 1
    if len(rest) > 1 and v.is_digits(rest[1].text):
        _skipped_before_weight(rest, method)
    word = rest.pop(0)
    if v.is_digits(word.text) and int(word.text) <= v.MAX_WEIGHT:
        return int(word.text)
    if option := _WEIGHT_OPTION.fullmatch(word.text):
        raise v.Bad(
            f"write the weight as a plain number after the method: '{method} {option[1]}' "
            f"(ldirectord rejects {word.text!r})",
            word.offset,
            len(word.text),
        )
    raise v.Bad(
        f"invalid weight {word.text!r} (expected a whole number from 0 to 65535)",
        word.offset,
        len(word.text),
    )


def _skipped_before_weight(rest: list[v.Part], method: str) -> None:
    """Drop a weight word before the number, as ldirectord skips it; refuse other words.

    ldirectord takes the first blank-preceded digit run as the weight, so any word before the
    number is skipped: `gate weight 5` and `gate -w 5` are weight 5, and so is `gate x 5`.
    """
    word, number = rest[0], rest[1]
    if word.text in WEIGHT_WORDS:
        rest.pop(0)
        return
    raise v.Bad(
        f"unexpected {word.text!r} before the weight (ldirectord skips it and reads weight "
        f"{number.text}); write '{method} {number.text}'",
        word.offset,
        len(word.text),
    )


def _request_receive(rest: list[v.Part], end: int) -> tuple[str | None, str | None]:
    if not rest or not rest[0].text.startswith('"'):
        return None, None
    request = rest.pop(0)
    if rest and rest[0].text == ",":
        rest.pop(0)
    if not rest or not rest[0].text.startswith('"'):
        at = rest[0].offset if rest else end
        raise v.Bad('a per-real request needs a receive string too: "REQUEST", "RECEIVE"', at, 1)
    receive = rest.pop(0)
    path = request.text[1:-1]
    # ldirectord: a leading / is added; healthd keeps the receive string (ldirectord drops
    # it when the request already starts with /)
    return (path if path.startswith("/") else "/" + path), receive.text[1:-1]


def _thresholds(rest: list[v.Part]) -> tuple[int, int]:
    found: dict[str, tuple[int, v.Part]] = {}
    while rest and (m := _THRESHOLD.fullmatch(rest[0].text)):
        word = rest.pop(0)
        kind = m.group(1)
        if kind in found:
            raise v.Bad(f"'{kind}:' is given twice", word.offset, len(word.text))
        if kind == "l" and "u" in found:
            raise v.Bad(
                "'u:' must come after 'l:' (ldirectord silently drops a 'u:' written first)",
                found["u"][1].offset,
                len(found["u"][1].text),
            )
        found[kind] = (int(m.group(2)), word)
    lower = found["l"][0] if "l" in found else 0
    upper = found["u"][0] if "u" in found else 0
    if lower > upper:
        # kernel: IPVS refuses l_threshold > u_threshold (ERANGE), and u:0 means no limit, so
        # an 'l:' alone is refused too; ldirectord passes it on and the add fails every time
        word = found["l"][1]
        message = (
            f"lower threshold {lower} is above the upper threshold {upper}"
            if upper
            else f"lower threshold {lower} needs an upper threshold 'u:N' with N >= {lower}"
        )
        raise v.Bad(message, word.offset, len(word.text))
    return lower, upper


def duplicate(endpoints: list[str], first: int) -> str:
    """Return the warning for a line that repeats reals of its virtual (first at line `first`).

    ldirectord adds such a real again and the kernel refuses it, so the first line stands.
    """
    if len(endpoints) == 1:
        return (
            f"duplicate real server {endpoints[0]} in this virtual service (first at line "
            f"{first}); the kernel holds it once, so healthd keeps the first line's weight "
            "and options"
        )
    shown = ", ".join(endpoints[:3]) + (
        f" and {len(endpoints) - 3} more" if len(endpoints) > 3 else ""
    )
    return (
        f"duplicate real servers {shown} in this virtual service (first at line {first}); the "
        "kernel holds each once, so healthd keeps the first line's weight and options"
    )
