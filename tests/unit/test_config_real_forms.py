"""real= forms ldirectord accepts: read with its meaning, or refused with what to write.

ldirectord finds the weight after the forwarding method with an unanchored `\\s+(\\d+)`, so
a word before the number is skipped. Weight words (`weight`, `-w`, `--weight`, `w`) are read
as ldirectord reads them; any other skipped word is an error that gives the line to write.
"""

from __future__ import annotations

import pytest

from healthd.config import ConfigErrors, StaticResolver, parse_text

HEAD = "virtual=192.0.2.10:80\n    real=198.51.100.5:80 "


def _real(tail: str):
    config = parse_text(HEAD + tail + "\n", "w.cf", resolver=StaticResolver())
    (real,) = config.virtuals[0].reals
    return real


@pytest.mark.parametrize(
    ("tail", "weight", "lower", "upper"),
    [
        ("gate weight 5", 5, 0, 0),
        ("gate -w 5", 5, 0, 0),
        ("masq --weight 0", 0, 0, 0),
        ("ipip w 12 l:2 u:40", 12, 2, 40),
        ('gate weight 3 "health", "OK"', 3, 0, 0),
    ],
)
def test_weight_words_before_the_number_are_read_as_ldirectord(
    tail: str, weight: int, lower: int, upper: int
) -> None:
    real = _real(tail)
    assert (real.weight, real.lower, real.upper) == (weight, lower, upper)


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (
            "gate foo 5",
            "w.cf:2:31: error: unexpected 'foo' before the weight (ldirectord skips it and "
            "reads weight 5); write 'gate 5'",
        ),
        (
            "gate, 2",
            "w.cf:2:30: error: unexpected ',' before the weight (ldirectord skips it and "
            "reads weight 2); write 'gate 2'",
        ),
        (
            "masq w=7",
            "w.cf:2:31: error: write the weight as a plain number after the method: "
            "'masq 7' (ldirectord rejects 'w=7')",
        ),
        (
            "gate weight:4",
            "w.cf:2:31: error: write the weight as a plain number after the method: "
            "'gate 4' (ldirectord rejects 'weight:4')",
        ),
        (
            "gate weight",
            "w.cf:2:31: error: invalid weight 'weight' (expected a whole number from 0 to 65535)",
        ),
    ],
)
def test_other_forms_say_what_to_write(tail: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        _real(tail)
    assert [str(e) for e in caught.value.errors] == [message]
