"""Faults around the engine: the kernel refusing ops, failing dumps, healthd's own shortages,
and the clock jumping. healthd logs, retries and recovers without a restart, and never takes
a real out because healthd itself failed.

The in-memory driver follows the real one's rules (healthd.ipvs.fake): a refused op raises
DriverError with the kernel's errno, as NetlinkDriver does with the kernel's answer.
"""

from __future__ import annotations

import errno

import pytest

from checks.base import Result
from tests.component.support import Harness, config, events, real, virtual

R1, R2, R3 = "198.51.100.1", "198.51.100.2", "198.51.100.3"
SVC = "tcp/192.0.2.10:80"
FULL = {SVC: {f"{R1}:80": 1, f"{R2}:80": 1, f"{R3}:80": 1}}


def three(**kw):
    return config(virtual(real(R1), real(R2), real(R3), quiescent=True), resync_interval=30, **kw)


@pytest.mark.parametrize("err", [errno.EPERM, errno.ENOMEM, errno.EBUSY])
async def test_refused_ops_are_logged_retried_and_the_table_completed(
    err, harnesses, logs_captured
):
    h = Harness(three())
    harnesses.append(h)
    h.driver.fail_next(err, count=3)  # the first ops of the start are refused
    await h.start()
    failed = events(logs_captured, "ipvs.apply_failed")
    assert failed, "a refused op must be logged"
    # the refused op's own errno; what depended on it (dests of a service never added)
    # then meets ENOENT, as in the kernel
    assert err in {e["errno"] for e in failed}
    assert {e["errno"] for e in failed} <= {err, errno.ENOENT}
    assert not h.task.done()
    await h.clock.advance(10)  # the reals come up: their service is planned again
    await h.clock.advance(30)  # and the resync repairs whatever is still missing
    assert await h.weights() == FULL
    assert events(logs_captured, "real.down") == []
    # refused again while a real fails: the real still goes, once the kernel accepts
    h.script.set(R2, False)
    h.driver.fail_next(err, count=1)
    await h.clock.advance(10)
    await h.clock.advance(30)
    assert (await h.weights())[SVC][f"{R2}:80"] == 0
    assert [e["real"] for e in events(logs_captured, "real.down")] == [f"{R2}:80"]


async def test_a_dump_lost_to_enobufs_is_retried_and_health_untouched(harnesses, logs_captured):
    h = Harness(three(), jitter=lambda: 0.0)
    harnesses.append(h)
    await h.start()
    await h.clock.advance(10)
    assert await h.weights() == FULL
    ops = len(h.driver.journal)
    h.driver.fail_dumps(errno.ENOBUFS, count=2)  # two resyncs in a row lose their dump
    await h.driver.apply_raw(_drift())  # meanwhile a real is deleted by hand
    await h.clock.advance(30)
    await h.clock.advance(30)
    failed = events(logs_captured, "ipvs.dump_failed")
    assert [e["errno"] for e in failed] == [errno.ENOBUFS, errno.ENOBUFS]
    assert len(h.driver.journal) == ops  # no op planned against a dump it does not have
    await h.clock.advance(30)  # the third dump works: the drift is repaired
    assert await h.weights() == FULL
    assert events(logs_captured, "real.down") == []
    assert not h.task.done()


def _drift():
    from ipaddress import ip_address

    from healthd.ipvs.types import DelDest, DestKey, Protocol, ServiceKey

    key = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
    return DelDest(key, DestKey(ip_address(R3), 80))


@pytest.mark.parametrize(
    "why", ["Too many open files", "No buffer space available", "check crashed: MemoryError: "]
)
async def test_local_errors_never_take_a_real_out_nor_bring_one_back(why, harnesses, logs_captured):
    h = Harness(three())
    harnesses.append(h)
    local = Result.down("local_error", why)
    h.script.set(R1, True, *[local] * 5, True)  # up, then healthd cannot check it, then fine
    h.script.set(R2, False, *[local] * 5, True)  # down, the same, then it recovers for real
    await h.start()
    for _ in range(5):  # the five local errors
        await h.clock.advance(10)
        weights = (await h.weights())[SVC]
        assert weights[f"{R1}:80"] == 1  # still carrying traffic
        assert weights[f"{R2}:80"] == 0  # still out: a local error is no success either
    snapshot = h.engine.snapshot()
    r1 = snapshot["virtuals"][0]["reals"][0]
    assert (r1["up"], r1["failures"], r1["local_errors"]) == (True, 0, 5)
    assert r1["last"]["reason"] == "local_error"
    warned = events(logs_captured, "check.local_error")
    assert [e["real"] for e in warned] == [f"{R1}:80", f"{R2}:80"]  # once per streak each
    await h.clock.advance(10)
    assert (await h.weights())[SVC] == FULL[SVC]
    assert events(logs_captured, "real.down") == []  # R2 was never up: no transition down
    assert events(logs_captured, "real.up")[-1]["real"] == f"{R2}:80"  # its first success


async def test_a_jump_of_the_clock_runs_each_check_once_not_a_burst(harnesses):
    # a suspended VM or a stalled process sees time leap forward by an hour: the missed
    # intervals are not made up for all at once, and the cadence resumes afterwards
    h = Harness(three())
    harnesses.append(h)
    await h.start()
    await h.clock.advance(10)
    before = h.script.count(R1)
    await h.clock.jump(3600)
    after_jump = h.script.count(R1)
    assert after_jump - before == 1, f"{after_jump - before} runs after the jump"
    for _ in range(5):
        await h.clock.advance(10)
    assert h.script.count(R1) - after_jump == 5  # one per interval again
    assert await h.weights() == FULL
