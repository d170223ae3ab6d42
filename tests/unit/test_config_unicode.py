"""Unicode blanks in ldirectord.cf: every White_Space character is a blank, digits are ASCII.

Files edited with CJK input methods carry full-width spaces (U+3000) and no-break spaces
after values and between words; healthd reads them as blanks. Digits other than 0-9 (a
full-width five U+FF15, a superscript two U+00B2) are never numbers, as in ldirectord's
byte-wise regular expressions.
"""

from __future__ import annotations

import pytest

from healthd.config import ConfigErrors, StaticResolver, parse_text

RESOLVER = StaticResolver(services={"http": 80})
IDEOGRAPHIC = "\u3000"
NBSP = "\u00a0"


def _parse(text: str):
    return parse_text(text, "u.cf", resolver=RESOLVER, hostname="director")


@pytest.mark.parametrize("blank", [IDEOGRAPHIC, NBSP, "\u2003", "\u202f", "\v", "\f"])
def test_unicode_blank_after_values_is_ignored(blank: str) -> None:
    text = (
        f"checkinterval=7{blank}\n"
        f"quiescent=yes{blank}\n"
        f"virtual=192.0.2.10:80{blank}\n"
        f"    real=198.51.100.5:80{blank}masq{blank}3{blank}\n"
        f"    scheduler=wlc{blank}\n"
        f"    service=http{blank}\n"
        f"    fallback=198.51.100.9:80{blank}gate{blank}\n"
    )
    config = _parse(text)
    (virtual,) = config.virtuals
    assert config.checkinterval == 7
    assert virtual.quiescent is True
    assert virtual.scheduler == "wlc"
    (real,) = virtual.reals
    assert (str(real.address), real.port, real.forward.value, real.weight) == (
        "198.51.100.5",
        80,
        "masq",
        3,
    )
    assert virtual.fallback is not None
    assert str(virtual.fallback.address) == "198.51.100.9"


def test_unicode_blank_around_equals_and_before_comment() -> None:
    config = _parse(
        f"checktimeout{IDEOGRAPHIC}={IDEOGRAPHIC}3{IDEOGRAPHIC}# three seconds\n"
        "virtual=192.0.2.10:80\n"
        "    real=198.51.100.5:80 gate\n"
    )
    assert config.virtuals[0].check.checktimeout == 3


def test_a_line_of_unicode_blanks_is_blank_and_ends_the_block() -> None:
    with pytest.raises(ConfigErrors) as caught:
        _parse(
            "virtual=192.0.2.10:80\n"
            "    real=198.51.100.5:80 gate\n"
            f"{IDEOGRAPHIC}{NBSP}\n"
            "    real=198.51.100.6:80 gate\n"
        )
    (error,) = caught.value.errors
    assert error.loc is not None
    assert error.loc.line == 4
    assert "the blank line 3 ended the virtual block of line 1" in error.message


def test_unicode_blank_inside_a_quoted_value_is_kept() -> None:
    config = _parse(
        "virtual=192.0.2.10:80\n"
        "    real=198.51.100.5:80 gate\n"
        f'    receive="OK{IDEOGRAPHIC}ready"\n'
    )
    assert config.virtuals[0].check.receive == f"OK{IDEOGRAPHIC}ready"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("checkinterval=\uff15\n", "invalid checkinterval '\uff15'"),
        (
            "virtual=192.0.2.10:80\n    real=198.51.100.5:80 gate \u00b2\n",
            "invalid weight '\u00b2'",
        ),
        ("virtual=192.0.2.10:\uff18\uff10\n", "invalid port '\uff18\uff10'"),
    ],
)
def test_digits_other_than_ascii_are_not_numbers(line: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as caught:
        _parse(line)
    assert any(message in e.message for e in caught.value.errors), caught.value.errors
