"""The check interface's small helpers: reason tokens, Result, CheckOptionError, timed(),
host_text()."""

from __future__ import annotations

import json
import re
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from checks.base import CheckOptionError, Reason, Result, Status, Target, host_text, timed


def test_reason_tokens_are_lower_snake_case_and_unique() -> None:
    values = [r.value for r in Reason]
    assert len(values) == len(set(values))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", v) for v in values)


def test_result_stores_a_reason_as_a_plain_string() -> None:
    result = Result.down(Reason.TIMEOUT, "slow")
    assert type(result.reason) is str
    assert result.reason == "timeout" == Reason.TIMEOUT
    assert json.dumps({"reason": result.reason}) == '{"reason": "timeout"}'


def test_stopwatch_results() -> None:
    sw = timed()
    up, down = sw.up("fine"), sw.down(Reason.REFUSED, "nobody home")
    assert (up.status, up.reason, up.detail) == (Status.UP, "ok", "fine")
    assert (down.status, down.reason) == (Status.DOWN, "refused")
    assert 0 <= up.elapsed <= down.elapsed
    assert up.up
    assert not down.up


def test_check_option_error_forms() -> None:
    named = CheckOptionError("receive", "bad regex")
    assert (named.option, named.message, str(named)) == ("receive", "bad regex", "bad regex")
    bare = CheckOptionError("something is wrong")
    assert (bare.option, str(bare)) == ("", "something is wrong")
    with pytest.raises(ValueError, match="bad regex"):
        raise named


@pytest.mark.parametrize(
    ("address", "want"),
    [
        (IPv4Address("192.0.2.10"), "192.0.2.10"),
        (IPv6Address("2001:db8::1"), "[2001:db8::1]"),
        (IPv6Address("fe80::1%eth0"), "[fe80::1%eth0]"),
        ("203.0.113.7", "203.0.113.7"),  # a socket name's text
        ("2001:db8::7", "[2001:db8::7]"),
        ("::ffff:198.51.100.1", "[::ffff:198.51.100.1]"),  # text is kept as given
    ],
)
def test_host_text_brackets_ipv6_only(address: IPv4Address | IPv6Address | str, want: str) -> None:
    assert host_text(address) == want


def test_host_text_keeps_an_ipv4_mapped_address_ipv6() -> None:
    mapped = IPv6Address("::ffff:192.0.2.1")
    text = host_text(mapped)
    # How Python spells the mapped address changed in 3.13; the brackets do not.
    assert text == f"[{mapped}]"
    assert ip_address(text[1:-1]) == mapped
    assert host_text(mapped.ipv4_mapped or mapped) == "192.0.2.1"


def test_target_host_and_str_use_host_text() -> None:
    v6 = Target(IPv6Address("2001:db8::2"), 8080)
    v4 = Target(IPv4Address("198.51.100.2"), 80)
    assert (v6.host, str(v6)) == ("[2001:db8::2]", "[2001:db8::2]:8080")
    assert (v4.host, str(v4)) == ("198.51.100.2", "198.51.100.2:80")
