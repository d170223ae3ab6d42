"""The check interface's small helpers: reason tokens, Result, CheckOptionError, timed()."""

from __future__ import annotations

import json
import re

import pytest

from checks.base import CheckOptionError, Reason, Result, Status, timed


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
