"""The engine on virtual time, the in-memory table and scripted checks.

Each test drives check outcomes round by round (checkinterval 10 s, jitter 0: every real is
checked at t=0, 10, 20, ...) and asserts on the ops the FakeDriver journalled and on the
captured log events.
"""

from __future__ import annotations

import asyncio
import errno
from ipaddress import ip_address

import pytest

from checks.base import Result
from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.types import (
    DelDest,
    Dest,
    DestKey,
    Protocol,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)
from healthd.model import CheckSpec, CheckType, Fallback, Proto
from healthd.plugins import Plugin
from tests.component.support import Harness, config, events, real, virtual

SVC = "tcp/192.0.2.10:80"
R1, R2 = "198.51.100.1", "198.51.100.2"


async def started(harnesses, cfg, **kw) -> Harness:
    h = Harness(cfg, **kw)
    harnesses.append(h)
    await h.start()
    return h


def kernel_table(*dests: tuple[str, int], vip: str = "192.0.2.10", port: int = 80) -> Table:
    key = ServiceKey(Protocol.TCP, ip_address(vip), port)
    entries = {
        DestKey(ip_address(a), port): Dest(DestKey(ip_address(a), port), w) for a, w in dests
    }
    return Table({key: ServiceEntry(Service(key), entries)})


async def test_failurecount_consecutive_failures_take_a_real_down(harnesses, logs_captured):
    cfg = config(virtual(real(R1), real(R2), failurecount=3, quiescent=True))
    h = Harness(cfg)
    harnesses.append(h)
    h.script.set(R2, True, False, False, True, False, False, False)
    await h.start()
    assert (await h.weights())[SVC] == {f"{R1}:80": 1, f"{R2}:80": 1}
    mark = len(h.driver.journal)
    await h.clock.advance(20)  # two failures, then a success resets the count
    await h.clock.advance(10)
    assert h.ops(mark) == []
    await h.clock.advance(20)  # failures 1, 2: still up
    assert h.ops(mark) == []
    await h.clock.advance(10)  # failure 3 of 3
    assert h.ops(mark) == [f"edit-dest {SVC} {R2}:80 route w=0"]
    down = events(logs_captured, "real.down")
    assert len(down) == 1
    assert down[0]["real"] == f"{R2}:80"
    assert down[0]["virtual"] == SVC
    assert down[0]["failures"] == 3
    assert down[0]["action"] == "quiesce"
    assert down[0]["reason"] == "refused"
    assert down[0]["check"] == "connect"


async def test_quiescent_no_deletes_and_restore_adds_back(harnesses, logs_captured):
    cfg = config(virtual(real(R1), real(R2, weight=5), quiescent=False))
    h = Harness(cfg)
    harnesses.append(h)
    h.script.set(R2, True, False, True)
    await h.start()
    mark = len(h.driver.journal)
    await h.clock.advance(10)
    assert h.ops(mark) == [f"del-dest {SVC} {R2}:80"]
    assert events(logs_captured, "real.down")[0]["action"] == "remove"
    await h.clock.advance(10)
    assert h.ops(mark + 1) == [f"add-dest {SVC} {R2}:80 route w=5"]
    assert events(logs_captured, "real.up")[-1]["action"] == "restore"


async def test_rise_needs_consecutive_successes(harnesses):
    cfg = config(virtual(real(R1), real(R2), rise=3, quiescent=True))
    h = Harness(cfg)
    harnesses.append(h)
    h.script.set(R2, False, True, True, False, True, True, True)
    await h.start()
    assert (await h.weights())[SVC][f"{R2}:80"] == 0
    await h.clock.advance(50)  # t=10..50: up, up, down, up, up: never three in a row
    assert (await h.weights())[SVC][f"{R2}:80"] == 0
    await h.clock.advance(10)  # third success in a row
    assert (await h.weights())[SVC][f"{R2}:80"] == 1


async def test_readdquiescent_decides_whether_a_missing_quiesced_real_returns(harnesses):
    for readd, expected in ((False, {f"{R1}:80": 1}), (True, {f"{R1}:80": 1, f"{R2}:80": 0})):
        cfg = config(
            virtual(real(R1), real(R2), quiescent=True), readdquiescent=readd, resync_interval=30
        )
        h = Harness(cfg)
        harnesses.append(h)
        h.script.set(R2, False)
        await h.start()
        svc = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
        await h.driver.apply_raw(DelDest(svc, DestKey(ip_address(R2), 80)))  # by hand
        await h.clock.advance(30)
        assert (await h.weights())[SVC] == expected, readd
        await h.stop()


async def test_fallback_is_in_exactly_while_no_real_is_up(harnesses, logs_captured, tmp_path):
    out = tmp_path / "calls"
    script = tmp_path / "fb.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {out}\n')
    script.chmod(0o755)
    v = virtual(
        real(R1),
        fallback=Fallback(ip_address("127.0.0.1"), 80),
        fallbackcommand=str(script),
    )
    h = Harness(config(v))
    harnesses.append(h)
    h.script.set(R1, True, False, True)
    await h.start()
    assert (await h.weights())[SVC] == {f"{R1}:80": 1}
    await h.clock.advance(10)  # the only real fails: the fallback goes in before it leaves
    assert h.ops()[-2:] == [
        f"add-dest {SVC} 127.0.0.1:80 route w=1",
        f"del-dest {SVC} {R1}:80",
    ]
    await h.clock.advance(10)
    assert (await h.weights())[SVC] == {f"{R1}:80": 1}
    await h.engine._hooks.drain(5.0)
    assert out.read_text().splitlines() == [
        "start 192.0.2.10:80 tcp",  # start-up, empty table: no real is known to be up
        "stop 192.0.2.10:80 tcp",  # the first check at t=0
        "start 192.0.2.10:80 tcp",
        "stop 192.0.2.10:80 tcp",
    ]
    names = [e["event"] for e in logs_captured if e["event"].startswith("fallback.")]
    assert names == ["fallback.on", "fallback.off", "fallback.on", "fallback.off"]
    assert events(logs_captured, "hook.ran")


async def test_shared_real_is_checked_once_and_fails_once(harnesses, logs_captured):
    a = virtual(real(R1), failurecount=2, quiescent=True)
    b = virtual(real(R1), port=8080, failurecount=2, quiescent=True)
    h = Harness(config(a, b))
    harnesses.append(h)
    h.script.set(R1, True, False, False)
    await h.start()
    await h.clock.advance(10)
    assert h.script.count(R1) == 2  # t=0 and t=10: once per round, not once per virtual
    weights = await h.weights()
    assert weights[SVC][f"{R1}:80"] == 1  # one failure of two, counted once
    await h.clock.advance(10)
    weights = await h.weights()
    assert weights[SVC][f"{R1}:80"] == 0
    assert weights["tcp/192.0.2.10:8080"][f"{R1}:8080"] == 0
    down = events(logs_captured, "real.down")
    assert {e["virtual"] for e in down} == {SVC, "tcp/192.0.2.10:8080"}
    assert all(e["failures"] == 2 for e in down)


async def test_maintenance_forces_down_without_checking(harnesses, logs_captured, tmp_path):
    cfg = config(virtual(real(R1), real(R2), quiescent=True), maintenancedir=str(tmp_path))
    h = await started(harnesses, cfg)
    assert (await h.weights())[SVC][f"{R2}:80"] == 1
    (tmp_path / f"{R2}:80").touch()
    await h.clock.advance(10)
    assert (await h.weights())[SVC][f"{R2}:80"] == 0
    runs = h.script.count(R2)
    await h.clock.advance(20)
    assert h.script.count(R2) == runs  # not checked while in maintenance
    assert events(logs_captured, "real.maintenance")[0]["real"] == f"{R2}:80"
    down = events(logs_captured, "real.down")
    assert down[0]["reason"] == "maintenance"
    (tmp_path / f"{R2}:80").unlink()
    await h.clock.advance(10)  # released at the scan, back up at the next good check
    await h.clock.advance(10)
    assert (await h.weights())[SVC][f"{R2}:80"] == 1
    assert h.script.count(R2) > runs


async def test_a_destination_deleted_by_hand_comes_back_at_resync(harnesses, logs_captured):
    cfg = config(virtual(real(R1), real(R2)), resync_interval=30)
    h = await started(harnesses, cfg)
    svc = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
    await h.driver.apply_raw(DelDest(svc, DestKey(ip_address(R2), 80)))
    await h.clock.advance(29)
    assert f"{R2}:80" not in (await h.weights())[SVC]
    await h.clock.advance(1)
    assert (await h.weights())[SVC][f"{R2}:80"] == 1
    assert events(logs_captured, "ipvs.drift_detected")[0]["ops"] == 1


async def test_foreign_services_are_never_touched(harnesses):
    foreign = kernel_table(("203.0.113.7", 3), vip="192.0.2.99", port=443)
    h = await started(harnesses, config(virtual(real(R1)), resync_interval=30), table=foreign)
    await h.clock.advance(60)
    await h.stop()
    weights = await h.weights()
    assert weights == {"tcp/192.0.2.99:443": {"203.0.113.7:443": 3}}
    assert all("192.0.2.99" not in op for op in h.ops())


async def test_startup_adopts_reals_in_the_kernel_and_never_flaps(harnesses):
    table = kernel_table((R1, 1), (R2, 0), ("198.51.100.9", 4))
    cfg = config(virtual(real(R1), real(R2), quiescent=True))
    h = Harness(cfg, table=table)
    harnesses.append(h)
    h.script.set(R2, False)
    await h.start()
    ops = h.ops()
    # R1 (weight 1) is taken as up and left alone; R2 (weight 0) is down and stays at 0;
    # the untracked destination of the owned service is purged
    assert ops == [f"del-dest {SVC} 198.51.100.9:80"]
    await h.clock.advance(30)
    assert all(R2 not in op for op in h.ops()), "a down real never gets full weight"
    assert (await h.weights())[SVC] == {f"{R1}:80": 1, f"{R2}:80": 0}


async def test_reload_changes_only_what_changed_and_keeps_health(harnesses, logs_captured):
    v1 = virtual(real(R1), real(R2), failurecount=3, quiescent=True)
    h = Harness(config(v1))
    harnesses.append(h)
    h.script.set(R1, True, False)  # R1 fails from t=10 on
    await h.start()
    await h.clock.advance(10)  # R1: one failure of three
    mark = len(h.driver.journal)
    r3 = real("198.51.100.3")
    v2 = virtual(real(R1), real(R2), r3, failurecount=3, quiescent=True)
    h.script.set(r3.address.exploded, False)
    await h.engine.reload(config(v2))
    assert h.ops(mark) == [f"add-dest {SVC} 198.51.100.3:80 route w=0"]
    await h.clock.advance(10)  # R1: failure two of three, kept across the reload
    assert (await h.weights())[SVC][f"{R1}:80"] == 1
    await h.clock.advance(10)
    assert (await h.weights())[SVC][f"{R1}:80"] == 0
    assert events(logs_captured, "engine.reloaded")[0]["added"] == 1


async def test_reload_removes_virtuals_it_owned_and_keeps_probes_running(harnesses):
    a = virtual(real(R1))
    b = virtual(real(R2), port=8080)
    h = await started(harnesses, config(a, b))
    await h.engine.reload(config(a))
    assert "tcp/192.0.2.10:8080" not in await h.weights()
    assert h.ops()[-2:] == [
        f"del-dest tcp/192.0.2.10:8080 {R2}:8080",
        "del-service tcp/192.0.2.10:8080",
    ]
    before = h.script.count(R1)
    await h.clock.advance(10)
    assert h.script.count(R1) == before + 1
    assert h.script.count(R2) == 1  # its probe stopped with the reload


async def test_a_crashing_check_is_healthds_failure_not_the_reals(harnesses, logs_captured):
    h = Harness(config(virtual(real(R1), real(R2), quiescent=True)))
    harnesses.append(h)
    h.script.set(R2, True, RuntimeError("bug in a check"), True)
    await h.start()
    await h.clock.advance(10)
    crashed = events(logs_captured, "check.crashed")
    assert len(crashed) == 1
    assert crashed[0]["exc_info"] is True
    # a local_error: the real keeps its weight, no transition, the engine goes on
    assert events(logs_captured, "real.down") == []
    assert (await h.weights())[SVC][f"{R2}:80"] == 1
    await h.clock.advance(10)
    assert (await h.weights())[SVC][f"{R2}:80"] == 1
    assert not h.task.done()


async def test_driver_errors_are_logged_and_retried_at_resync(harnesses, logs_captured):
    on = CheckSpec(checktype=CheckType.ON)  # no checks: only the resync can retry
    h = Harness(config(virtual(real(R1), check=on), resync_interval=30))
    harnesses.append(h)
    h.driver.fail_next(errno.EPERM, count=1)
    await h.start()
    failed = events(logs_captured, "ipvs.apply_failed")
    assert failed[0]["errno"] == errno.EPERM
    assert "add-service" in failed[0]["op"]
    assert await h.weights() == {}  # and its dest failed with it: no service yet
    await h.clock.advance(30)
    assert (await h.weights())[SVC] == {f"{R1}:80": 1}
    assert not h.task.done()


async def test_dump_failure_is_not_fatal(harnesses, logs_captured):
    class BrokenDump(FakeDriver):
        broken = True

        async def dump(self):
            if self.broken:
                from healthd.ipvs.driver import error

                raise error(None, errno.EPERM, "no CAP_NET_ADMIN")
            return await super().dump()

    h = Harness(config(virtual(real(R1)), resync_interval=30))
    h.driver = BrokenDump()
    h.engine.kernel.driver = h.driver
    harnesses.append(h)
    await h.start()
    assert events(logs_captured, "ipvs.dump_failed")
    h.driver.broken = False
    await h.clock.advance(30)
    assert (await h.weights())[SVC] == {f"{R1}:80": 1}


@pytest.mark.parametrize(("cleanstop", "left"), [(True, {}), (False, {SVC: {f"{R1}:80": 1}})])
async def test_shutdown_applies_cleanstop(harnesses, cleanstop, left):
    h = await started(harnesses, config(virtual(real(R1), cleanstop=cleanstop)))
    runs = h.script.count(R1)
    await h.stop()
    assert await h.weights() == left
    await h.clock.advance(30)
    assert h.script.count(R1) == runs  # no probe runs after shutdown
    assert h.task.done()


async def test_checktype_on_is_always_up_and_off_keeps_its_start_state(harnesses):
    on = virtual(real(R1), check=CheckSpec(checktype=CheckType.ON))
    off = virtual(real(R2), port=8080, check=CheckSpec(checktype=CheckType.OFF), quiescent=True)
    h = await started(harnesses, config(on, off))
    await h.clock.advance(30)
    assert h.script.calls == {}
    weights = await h.weights()
    assert weights[SVC] == {f"{R1}:80": 1}
    assert weights["tcp/192.0.2.10:8080"] == {f"{R2}:8080": 0}


async def test_combined_check_negotiates_every_nth_round(harnesses):
    spec = CheckSpec(checktype=CheckType.COMBINED, combined_every=2, service="http")
    h = await started(harnesses, config(virtual(real(R1), check=spec)))
    await h.clock.advance(50)
    kinds = [k for (k, _), _ in sorted(h.script.calls.items())]
    assert set(kinds) == {"http", "connect"}
    assert h.script.count(R1, "http") == 2  # t=0 and t=30
    assert h.script.count(R1, "connect") == 4


async def test_udp_connect_check_pings(harnesses):
    v = virtual(real(R1), proto=Proto.UDP)
    h = await started(harnesses, config(v))
    assert h.script.count(R1, "ping") == 1
    assert h.script.count(R1, "connect") == 0


async def test_listeners_hear_results_transitions_fallback_and_states(harnesses):
    heard: list[tuple] = []

    class Recorder(Plugin):
        async def on_result(self, virtual, real, result):
            heard.append(("result", real.endpoint, result.up))

        async def on_transition(self, virtual, real, up, result, reason):
            heard.append(("transition", real.endpoint, up, reason))

        async def on_fallback(self, virtual, active):
            heard.append(("fallback", virtual.name, active))

        async def on_state(self, state):
            heard.append(("state", state))

    class Broken(Plugin):
        async def on_result(self, virtual, real, result):
            raise ValueError("listener bug")

    h = Harness(config(virtual(real(R1))), listeners=[Broken(), Recorder()])
    harnesses.append(h)
    h.script.set(R1, False)
    await h.start()
    await h.stop()
    assert heard == [
        ("state", "starting"),
        ("fallback", SVC, True),
        ("state", "running"),
        ("result", f"{R1}:80", False),
        ("state", "stopping"),
    ]
    h2 = Harness(config(virtual(real(R1))), listeners=[Recorder()])
    harnesses.append(h2)
    heard.clear()
    h2.script.set(R1, True, False)
    await h2.start()
    await h2.clock.advance(10)
    assert ("transition", f"{R1}:80", True, "ok") in heard
    assert ("transition", f"{R1}:80", False, "refused") in heard


async def test_snapshot_shows_health_last_result_and_kernel_weight(harnesses):
    h = Harness(config(virtual(real(R1), real(R2), quiescent=True)))
    harnesses.append(h)
    h.script.set(R2, Result.down("status_mismatch", "got 503, want 200", 0.012))
    await h.start()
    snap = h.engine.snapshot()
    assert snap["state"] == "running"
    (v,) = snap["virtuals"]
    assert v["virtual"] == SVC
    assert v["in_kernel"] is True
    r1, r2 = v["reals"]
    assert r1["up"] is True
    assert r1["kernel_weight"] == 1
    assert r2 == {
        "real": f"{R2}:80",
        "check": "connect",
        "up": False,
        "maintenance": False,
        "failures": 1,
        "local_errors": 0,
        "weight": 1,
        "kernel_weight": 0,
        "last": {
            "status": "down",
            "reason": "status_mismatch",
            "detail": "got 503, want 200",
            "elapsed_ms": 12.0,
        },
        "admin": None,  # no operator override (healthd ctl)
        "weight_override": None,
        "draining": False,
    }


async def test_bursts_of_transitions_are_reconciled_once(harnesses, logs_captured):
    reals = [real(f"198.51.100.{i}") for i in range(1, 21)]
    h = Harness(config(virtual(*reals, quiescent=True)))
    harnesses.append(h)
    for r in reals:
        h.script.set(str(r.address), True, False)
    await h.start()
    resyncs = len(events(logs_captured, "ipvs.resynced"))
    await h.clock.advance(10)
    assert len(events(logs_captured, "real.down")) == 20
    assert len(events(logs_captured, "ipvs.resynced")) - resyncs == 1
    assert all(w == 0 for w in (await h.weights())[SVC].values())


def test_fake_driver_satisfies_the_protocol():
    from healthd.ipvs.driver import IPVSDriver

    driver: IPVSDriver = FakeDriver()
    assert isinstance(driver, FakeDriver)


async def test_shutdown_after_run_was_cancelled_still_cleans_up(harnesses):
    h = await started(harnesses, config(virtual(real(R1))))
    h.task.cancel()
    await asyncio.gather(h.task, return_exceptions=True)
    await h.engine.shutdown()
    assert await h.weights() == {}
    assert h.engine.state == "stopping"


async def test_a_retried_failure_is_not_reported_as_drift(harnesses, logs_captured):
    on = CheckSpec(checktype=CheckType.ON)
    h = Harness(config(virtual(real(R1), check=on), resync_interval=30))
    harnesses.append(h)
    h.driver.fail_next(errno.ENOMEM, count=1)
    await h.start()
    await h.clock.advance(30)
    assert (await h.weights())[SVC] == {f"{R1}:80": 1}
    assert events(logs_captured, "ipvs.drift_detected") == []


async def test_maintenance_by_host_name(harnesses, tmp_path):
    # 127.0.0.1 reverse-resolves from /etc/hosts (localhost): no DNS traffic
    cfg = config(virtual(real("127.0.0.1"), quiescent=True), maintenancedir=str(tmp_path))
    h = await started(harnesses, cfg)
    assert (await h.weights())[SVC]["127.0.0.1:80"] == 1
    (tmp_path / "localhost:80").touch()
    await h.clock.advance(10)
    for _ in range(100):  # the reverse lookup runs in a worker thread: wait for it (<= 1 s)
        if (await h.weights())[SVC]["127.0.0.1:80"] == 0:
            break
        await asyncio.sleep(0.01)
        await h.clock.settle()
    assert (await h.weights())[SVC]["127.0.0.1:80"] == 0
    assert h.engine.snapshot()["virtuals"][0]["reals"][0]["maintenance"] is True


async def test_reload_with_a_new_weight_or_a_new_check_never_flaps(harnesses):
    h = await started(harnesses, config(virtual(real(R1), real(R2), quiescent=True)))
    mark = len(h.driver.journal)
    heavier = virtual(real(R1, weight=7), real(R2), quiescent=True)
    await h.engine.reload(config(heavier))
    assert h.ops(mark) == [f"edit-dest {SVC} {R1}:80 route w=7"]
    # a changed check is a new health entry: it adopts the kernel's view (weight > 0: up)
    ping = virtual(
        real(R1, weight=7), real(R2), quiescent=True, check=CheckSpec(checktype=CheckType.PING)
    )
    mark = len(h.driver.journal)
    await h.engine.reload(config(ping))
    assert h.ops(mark) == []
    await h.clock.advance(10)
    assert h.script.count(R1, "ping") >= 1
    assert (await h.weights())[SVC] == {f"{R1}:80": 7, f"{R2}:80": 1}


async def test_a_listener_subclass_inherits_no_op_defaults(harnesses):
    from healthd.engine import Listener

    states: list[str] = []

    class OnlyStates(Listener):
        async def on_state(self, state: str) -> None:
            states.append(state)

    h = Harness(config(virtual(real(R1))), listeners=[OnlyStates()])
    harnesses.append(h)
    h.script.set(R1, True, False)
    await h.start()
    await h.clock.advance(10)
    await h.stop()
    assert states == ["starting", "running", "stopping"]
