"""The watchdog's judgement: pings only while check results and reconciles make progress.

Pure: the times are given, no loop runs. tests/component/test_watchdog.py drives the same
through a daemon and a real sd_notify socket.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import structlog
from structlog.testing import capture_logs

from healthd.scheduler import GRACE
from healthd.watchdog import Progress, Watch

INTERVAL = 15.0  # WatchdogSec=30s


@pytest.fixture
def logged():
    structlog.reset_defaults()
    with capture_logs() as events:
        yield events


@dataclass
class FakeProbe:
    timeout: float


@dataclass
class FakeJob:
    probe: FakeProbe
    interval: float


def running(period_jobs: tuple[tuple[float, float], ...] = ((10.0, 5.0),)) -> Progress:
    p = Progress()
    p.schedule([FakeJob(FakeProbe(t), i) for i, t in period_jobs])  # type: ignore[misc]
    return p


def test_schedule_notes_the_probes_and_the_slowest_round():
    p = running(((10.0, 5.0), (60.0, 30.0), (1.0, 1.0)))
    assert (p.probes, p.period) == (3, 60.0 + 30.0 + GRACE)
    p.schedule([])
    assert (p.probes, p.period) == (0, 0.0)


def test_bound_is_two_pings_or_two_rounds_of_the_slowest_check():
    assert Watch(running(((1.0, 1.0),)), INTERVAL, 0.0).bound == 2 * INTERVAL
    slow = running(((60.0, 30.0),))
    assert Watch(slow, INTERVAL, 0.0).bound == 2 * (90.0 + GRACE)


def test_pings_while_results_come_in():
    p = running()
    w = Watch(p, INTERVAL, 0.0)
    for step in range(1, 20):
        p.results += 3
        assert w.tick(step * INTERVAL) is True
    assert w.reason is None


def test_no_results_within_the_bound_stops_the_pings_with_one_line(logged):
    p = running()  # bound: max(30, 2 * 16) = 32 s
    w = Watch(p, INTERVAL, 0.0)
    assert [w.tick(t) for t in (15.0, 30.0)] == [True, True]
    assert w.tick(45.0) is False
    assert w.tick(60.0) is False
    assert w.reason == "no_check_results"
    stalled = [e for e in logged if e["event"] == "watchdog.stalled"]
    assert len(stalled) == 1  # one line, not one per ping
    assert stalled[0]["reason"] == "no_check_results"
    assert stalled[0]["bound_s"] == 32.0
    assert stalled[0]["idle_s"] == 45.0
    assert stalled[0]["log_level"] == "error"


def test_progress_that_resumes_resumes_the_pings(logged):
    p = running()
    w = Watch(p, INTERVAL, 0.0)
    assert w.tick(45.0) is False
    p.results += 1
    assert w.tick(60.0) is True
    assert w.reason is None
    resumed = [e for e in logged if e["event"] == "watchdog.resumed"]
    assert [e["stalled"] for e in resumed] == ["no_check_results"]


def test_nothing_to_check_never_stalls():
    p = running(())  # every real checktype=on/off, or no virtual at all
    w = Watch(p, INTERVAL, 0.0)
    assert all(w.tick(t * INTERVAL) for t in range(1, 50))


def test_start_up_is_left_to_systemds_start_timeout():
    # systemd arms the watchdog after READY=1, which follows the first reconcile; a huge
    # first dump is no stall, and the bound counts from the moment the probes are scheduled
    p = Progress()
    p.reconciling = 1
    w = Watch(p, INTERVAL, 0.0)
    assert all(w.tick(t) for t in (30.0, 60.0, 90.0))
    p.reconciling, p.reconciles = 0, 1
    p.schedule([FakeJob(FakeProbe(5.0), 10.0)])  # type: ignore[list-item]
    assert w.tick(105.0) is True
    assert w.tick(120.0) is True  # 30 s after the schedule: within the 32 s bound
    assert w.tick(135.0) is False
    assert w.reason == "no_check_results"


def test_a_reconcile_that_never_ends_stalls_while_results_flow():
    p = running()
    w = Watch(p, INTERVAL, 0.0)
    p.reconciling = 1  # entered (a hung kernel call), never finished
    for t in (15.0, 30.0):
        p.results += 5
        assert w.tick(t) is True
    p.results += 5
    assert w.tick(45.0) is False
    assert w.reason == "reconcile_stuck"


def test_a_busy_reconciler_that_keeps_finishing_is_fine():
    p = running()
    w = Watch(p, INTERVAL, 0.0)
    p.reconciling = 2  # one running, one waiting for the lock, for ever
    for step in range(1, 20):
        p.results += 1
        p.reconciles += 1
        assert w.tick(step * INTERVAL) is True
