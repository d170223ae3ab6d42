"""Runtime control (healthd.runtime) on a real Engine, the in-memory table and scripted checks.

Drain, maint, weight and ready as `healthd ctl` sends them; the drain's wait for the
kernel's active connections (set on the FakeDriver), its timeout, overrides across a
reload and a restart (the state file), and refusals that change nothing.
"""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from healthd import statefile
from healthd.ipvs.types import Counters, DestKey, Protocol, ServiceKey
from healthd.runtime import Runtime
from tests.component.support import Harness, config, real, until, virtual

SVC = "tcp/192.0.2.10:80"
KEY = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
R1, R2 = "198.51.100.1", "198.51.100.2"
D2 = DestKey(ip_address(R2), 80)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def started(harnesses, tmp_path, cfg=None, clock=None):
    cfg = cfg or config(virtual(real(R1), real(R2, weight=3)))
    h = Harness(cfg)
    harnesses.append(h)
    rt = Runtime(str(tmp_path / "state.json"), now=clock or Clock(), poll=0.01)
    rt.attach(h.engine)
    await h.start()
    return h, rt


def ctl(op: str, real_: str = R2, value: object = None, virtual_: str = "192.0.2.10:80") -> dict:
    request: dict[str, object] = {"op": op, "virtual": virtual_, "real": f"{real_}:80"}
    if value is not None:
        request["value"] = value
    return request


async def test_drain_holds_weight_zero_until_connections_end_then_removes(harnesses, tmp_path):
    import asyncio

    h, rt = await started(harnesses, tmp_path)
    h.driver.set_counters(KEY, D2, Counters(active_conns=2))
    watcher = asyncio.create_task(rt.run())
    try:
        answer = await rt.handle(ctl("drain"))
        assert answer == {"ok": f"drain {SVC} {R2}:80: drain"}
        await until(lambda: h.driver.journal and "w=0" in str(h.driver.journal[-1]))
        assert (await h.weights())[SVC] == {f"{R1}:80": 1, f"{R2}:80": 0}
        await asyncio.sleep(0.1)  # several polls: still connected, still there
        assert f"{R2}:80" in (await h.weights())[SVC]
        assert h.engine.snapshot()["virtuals"][0]["reals"][1]["draining"] is True
        h.driver.set_counters(KEY, D2, Counters(active_conns=0, inactive_conns=4))
        await until(lambda: str(h.driver.journal[-1]).startswith("del-dest"))
        assert (await h.weights())[SVC] == {f"{R1}:80": 1}
        assert statefile.load(str(tmp_path / "state.json"))[0].mode == "drained"
    finally:
        watcher.cancel()


async def test_a_drain_ends_at_its_timeout_even_with_connections(harnesses, tmp_path):
    import asyncio

    clock = Clock()
    h, rt = await started(harnesses, tmp_path, clock=clock)
    h.driver.set_counters(KEY, D2, Counters(active_conns=5))
    watcher = asyncio.create_task(rt.run())
    try:
        assert "ok" in await rt.handle(ctl("drain", value="30"))
        await asyncio.sleep(0.1)
        assert f"{R2}:80" in (await h.weights())[SVC]
        clock.now += 31
        await until(lambda: str(h.driver.journal[-1]).startswith("del-dest"))
    finally:
        watcher.cancel()


async def test_maint_then_ready_takes_a_real_out_and_back(harnesses, tmp_path):
    h, rt = await started(harnesses, tmp_path)
    assert "ok" in await rt.handle(ctl("maint"))
    await until(lambda: str(h.driver.journal[-1]).startswith("del-dest"))
    assert "ok" in await rt.handle(ctl("ready"))
    await until(lambda: str(h.driver.journal[-1]).startswith("add-dest"))
    assert (await h.weights())[SVC] == {f"{R1}:80": 1, f"{R2}:80": 3}
    assert statefile.load(str(tmp_path / "state.json")) == []


async def test_a_weight_survives_a_reload_and_a_restart(harnesses, tmp_path):
    cfg = config(virtual(real(R1), real(R2, weight=3)))
    h, rt = await started(harnesses, tmp_path, cfg)
    assert (await rt.handle(ctl("weight", value=9)))["ok"].endswith("weight 9")
    await until(lambda: "w=9" in str(h.driver.journal[-1]))
    await h.engine.reload(config(virtual(real(R1), real(R2, weight=4), checkinterval=5)))
    assert (await h.weights())[SVC][f"{R2}:80"] == 9
    await h.stop()
    again = Harness(cfg)
    harnesses.append(again)
    Runtime(str(tmp_path / "state.json")).attach(again.engine)
    await again.start()
    assert (await again.weights())[SVC] == {f"{R1}:80": 1, f"{R2}:80": 9}


async def test_a_reload_that_drops_the_real_drops_its_override(harnesses, tmp_path):
    h, rt = await started(harnesses, tmp_path)
    await rt.handle(ctl("maint"))
    new = config(virtual(real(R1)))
    await h.engine.reload(new)
    rt.reconfigure(new)
    assert statefile.load(str(tmp_path / "state.json")) == []


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (ctl("drain", virtual_="192.0.2.99:80"), "no virtual service matches '192.0.2.99:80'"),
        (ctl("drain", real_="198.51.100.9"), "no real server matches '198.51.100.9:80'"),
        (ctl("weight", value=65536), "weight 65536 out of range (expected 0 to 65535)"),
        (ctl("weight", value="-1"), "weight -1 out of range (expected 0 to 65535)"),
        (ctl("weight"), "weight needs a value N (0 to 65535)"),
        (ctl("weight", value="heavy"), "weight 'heavy' is not a whole number"),
        (ctl("drain", value="0"), "drain timeout 0 out of range"),
        (ctl("sleep"), "unknown operation 'sleep' (expected drain, ready, maint, weight)"),
        (ctl("drain", virtual_="not-an-address"), "not an address"),
    ],
)
async def test_bad_requests_are_one_line_and_change_nothing(harnesses, tmp_path, request_, error):
    h, rt = await started(harnesses, tmp_path)
    mark = len(h.driver.journal)
    answer = await rt.handle(request_)
    assert set(answer) == {"error"}
    assert error in str(answer["error"])
    assert "\n" not in str(answer["error"])
    assert len(h.engine.overrides) == 0
    assert statefile.load(str(tmp_path / "state.json")) == []
    await h.clock.advance(1)
    assert h.ops(mark) == []


async def test_an_unwritable_state_file_refuses_the_request_and_changes_nothing(
    harnesses, tmp_path
):
    blocker = tmp_path / "file"
    blocker.write_text("")
    h = Harness(config(virtual(real(R1), real(R2))))
    harnesses.append(h)
    rt = Runtime(str(blocker / "state.json"))
    rt.attach(h.engine)
    await h.start()
    mark = len(h.driver.journal)
    answer = await rt.handle(ctl("maint"))
    assert "cannot write state file" in str(answer["error"])
    assert str(answer["error"]).endswith("nothing changed")
    assert len(h.engine.overrides) == 0
    await h.clock.advance(1)
    assert h.ops(mark) == []


async def test_an_unreadable_state_file_at_start_is_logged_and_ignored(
    harnesses, tmp_path, logs_captured
):
    (tmp_path / "state.json").write_text("{broken")
    h, _ = await started(harnesses, tmp_path)
    assert [e for e in logs_captured if e["event"] == "state.unreadable"]
    assert (await h.weights())[SVC] == {f"{R1}:80": 1, f"{R2}:80": 3}


async def test_with_every_real_held_the_fallback_stands_in_and_its_state_says_so(
    harnesses, tmp_path
):
    from healthd.model import Fallback

    fb = Fallback(ip_address("203.0.113.1"), 80)
    h, rt = await started(harnesses, tmp_path, config(virtual(real(R1), real(R2), fallback=fb)))
    assert h.engine.fallback_active[SVC] is False
    await rt.handle(ctl("maint", real_=R1))
    await rt.handle(ctl("drain", real_=R2))
    await until(lambda: h.engine.fallback_active[SVC])
    assert (await h.weights())[SVC] == {f"{R2}:80": 0, "203.0.113.1:80": 1}
