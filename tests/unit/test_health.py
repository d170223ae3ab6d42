"""Tests for healthd.health: the state machine as step-indexed progressions, and check keys."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from checks.base import Result
from healthd import health as hl
from healthd.health import (
    CheckKey,
    Health,
    Kind,
    Transition,
    check_groups,
    check_key,
    force,
    initial,
    observe,
    release,
)
from healthd.model import CheckSpec, CheckType, Config, Proto, Real, ServiceName, Virtual

OK = Result.ok()
FAIL = Result.down("refused", "connection refused")

# One progression per row, in the manner of seesaw's checkStates(i, ...): the results fed in
# order, and after each step the expected (up, failures, successes, transition kind or None).
PROGRESSIONS = [
    pytest.param(
        True,
        1,
        1,
        [(FAIL, False, 1, 0, "down"), (FAIL, False, 2, 0, None), (OK, True, 0, 1, "up")],
        id="ldirectord-defaults-one-failure-one-success",
    ),
    pytest.param(
        True,
        3,
        1,
        [
            (FAIL, True, 1, 0, None),
            (FAIL, True, 2, 0, None),
            (OK, True, 0, 1, None),  # a success resets the soft failures
            (FAIL, True, 1, 0, None),
            (FAIL, True, 2, 0, None),
            (FAIL, False, 3, 0, "down"),
        ],
        id="failurecount-3-needs-consecutive-failures",
    ),
    pytest.param(
        False,
        1,
        3,
        [
            (OK, False, 0, 1, None),
            (OK, False, 0, 2, None),
            (FAIL, False, 1, 0, None),  # a failure resets the rise streak
            (OK, False, 0, 1, None),
            (OK, False, 0, 2, None),
            (OK, True, 0, 3, "up"),
            (OK, True, 0, 4, None),
        ],
        id="rise-3-needs-consecutive-successes",
    ),
    pytest.param(
        False,
        2,
        1,
        [(OK, True, 0, 1, "up"), (FAIL, True, 1, 0, None), (FAIL, False, 2, 0, "down")],
        id="starts-down-comes-up-goes-down",
    ),
]


@pytest.mark.parametrize(("start_up", "failurecount", "rise", "steps"), PROGRESSIONS)
def test_progression(start_up, failurecount, rise, steps):
    health = initial(start_up, now=0.0)
    for i, (result, up, failures, successes, kind) in enumerate(steps, start=1):
        health, transition = observe(
            health, result, failurecount=failurecount, rise=rise, now=float(i)
        )
        got = (health.up, health.failures, health.successes, transition and transition.kind)
        assert got == (up, failures, successes, kind), f"step {i}"
        assert health.last is result


def test_down_transition_carries_reason_detail_and_failures():
    health = initial(True)
    health, _ = observe(health, FAIL, failurecount=2, now=1.0)
    health, transition = observe(health, FAIL, failurecount=2, now=2.0)
    assert transition == Transition(Kind.DOWN, "refused", "connection refused", 2)
    assert health.since == 2.0


def test_since_changes_only_on_transitions():
    health = initial(True, now=5.0)
    health, _ = observe(health, OK, failurecount=1, now=6.0)
    assert health.since == 5.0
    health, _ = observe(health, FAIL, failurecount=1, now=7.0)
    assert health.since == 7.0


def test_initial_takes_kernel_state():
    assert initial(True).is_up
    assert not initial(False).is_up
    assert initial(False).failures == 0


def test_force_takes_an_up_real_down_at_once_ignoring_failurecount():
    health, transition = force(initial(True), "maintenance", now=3.0)
    assert transition == Transition(Kind.DOWN, "maintenance")
    assert not health.is_up
    assert health.forced == "maintenance"
    assert health.since == 3.0


def test_force_of_a_down_real_is_no_transition_and_idempotent():
    health, transition = force(initial(False), "maintenance", now=1.0)
    assert transition is None
    again, transition = force(health, "maintenance", now=2.0)
    assert transition is None
    assert again is health


def test_checks_while_forced_never_bring_a_real_up():
    health, _ = force(initial(True), "maintenance", now=0.0)
    for i in range(3):
        health, transition = observe(health, OK, failurecount=1, now=float(i))
        assert transition is None
        assert not health.is_up


def test_release_keeps_the_real_down_until_a_success():
    health, _ = force(initial(True), "maintenance", now=0.0)
    health = release(health)
    assert health.forced is None
    assert not health.is_up
    health, transition = observe(health, OK, failurecount=1, rise=1, now=1.0)
    assert transition is not None
    assert transition.kind is Kind.UP
    assert health.is_up


def test_release_without_force_is_a_no_op():
    health = initial(True)
    assert release(health) is health


def test_health_is_frozen():
    health = Health(up=True)
    with pytest.raises(AttributeError):
        health.up = False  # type: ignore[misc]


# --- check keys ---------------------------------------------------------------------------

HTTP = CheckSpec(checktype=CheckType.NEGOTIATE, service=ServiceName("http"), request="/ok.html")


def _virtual(port: int, *reals: Real, check: CheckSpec = HTTP, **kw) -> Virtual:
    return Virtual(Proto.TCP, ip_address("192.0.2.10"), port, reals=reals, check=check, **kw)


REAL = Real(ip_address("198.51.100.1"), 80, weight=3)


def test_a_real_shared_by_two_virtuals_has_one_key():
    a = _virtual(80, REAL)
    b = _virtual(8080, Real(ip_address("198.51.100.1"), 80, weight=7))  # weight is not health
    assert check_key(a, a.reals[0]) == check_key(b, b.reals[0])
    groups = check_groups(Config("x.cf", (a, b)))
    assert list(groups.values()) == [[(a, a.reals[0]), (b, b.reals[0])]]


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(_virtual(80, Real(ip_address("198.51.100.2"), 80)), id="address"),
        pytest.param(_virtual(80, Real(ip_address("198.51.100.1"), 81)), id="port"),
        pytest.param(_virtual(80, REAL, check=CheckSpec(request="/other")), id="check"),
        pytest.param(_virtual(80, REAL, failurecount=3), id="failurecount"),
        pytest.param(_virtual(80, REAL, rise=2), id="rise"),
        pytest.param(_virtual(80, REAL, checkinterval=2.0), id="checkinterval"),
        pytest.param(
            Virtual(Proto.UDP, ip_address("192.0.2.10"), 80, reals=(REAL,), check=HTTP),
            id="protocol",
        ),
        pytest.param(_virtual(80, Real(ip_address("198.51.100.1"), 80, request="x")), id="req"),
        pytest.param(_virtual(80, Real(ip_address("198.51.100.1"), 80, receive="y")), id="rcv"),
    ],
)
def test_keys_differ_when_the_check_differs(other):
    base = _virtual(80, REAL)
    assert check_key(base, REAL) != check_key(other, other.reals[0])


def test_per_real_overrides_enter_the_key():
    real = Real(ip_address("198.51.100.1"), 80, request="health", receive="OK")
    key = check_key(_virtual(80, real), real)
    assert (key.check.request, key.check.receive) == ("health", "OK")


def test_external_checks_are_not_shared_across_virtuals():
    ext = CheckSpec(checktype=CheckType.EXTERNAL, checkcommand="/bin/true")
    a, b = _virtual(80, REAL, check=ext), _virtual(8080, REAL, check=ext)
    ka, kb = check_key(a, REAL), check_key(b, REAL)
    assert ka != kb
    assert ka.virtual == "tcp/192.0.2.10:80"


def test_key_str_brackets_ipv6():
    real = Real(ip_address("2001:db8::5"), 80)
    virtual = Virtual(Proto.TCP, ip_address("2001:db8::1"), 80, family=6, reals=(real,))
    assert str(check_key(virtual, real)) == "[2001:db8::5]:80"
    assert isinstance(check_key(virtual, real), CheckKey)


def test_transition_str_names_kind_and_reason():
    assert str(Transition(Kind.DOWN, "timeout", "no answer", 3)) == "down reason=timeout"


@pytest.mark.parametrize("up", [True, False])
def test_a_local_error_never_moves_a_real(up):
    # healthd could not run the check (EMFILE, ENOBUFS, a crash): no failure, no success
    local = Result.down("local_error", "Too many open files")
    h = hl.Health(up=up, failures=0 if up else 3, successes=2 if up else 0, since=5.0)
    for n in range(1, 20):
        h, transition = hl.observe(h, local, failurecount=1, rise=1, now=float(n))
        assert transition is None
    assert (h.up, h.failures, h.successes, h.since) == (up, 0 if up else 3, 2 if up else 0, 5.0)
    assert h.local_errors == 19
    assert h.last is local  # shown as the last result, so status says why
    # the next real result counts as if the local errors had not been
    h2, transition = hl.observe(h, Result.down("refused", ""), failurecount=2, now=30.0)
    assert transition is None  # up: first failure of two; down: stays down
    assert (h2.failures, h2.local_errors) == (1 if up else 4, 0)
