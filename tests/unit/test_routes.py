"""Route announcement: the pure plan and the announcer plugin over an in-memory route table.

The rtnetlink module itself runs against the real kernel in tests/kernel/test_cluster.py.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from ipaddress import ip_address

import pytest
from structlog.testing import capture_logs

from healthd.config import StaticResolver, parse_text
from healthd.model import Config
from healthd.routes import announcer as announcer_module
from healthd.routes.announcer import Announcer
from healthd.routes.plan import Route, carries, configured, desired, plan
from healthd.routes.rtnl import RouteError

RESOLVER = StaticResolver(interfaces=frozenset({"lo", "vip0"}))
VIP = ip_address("192.0.2.10")
TABLE = Route(VIP, table=100)


def config(text: str) -> Config:
    return parse_text(text, "t.cf", resolver=RESOLVER)


TWO = config(
    "virtual=192.0.2.10:80\n    real=198.51.100.1:80 gate\n    announce_table=100\n"
    "virtual=192.0.2.10:443\n    real=198.51.100.1:443 gate\n    announce_table=100\n"
    "virtual6=[2001:db8::10]:80\n    real6=[2001:db8::11]:80 gate\n    announce_interface=vip0\n"
    "    fallback6=[::1]:80\n    announce_fallback=yes\n"
    "virtual=192.0.2.20:80\n    real=198.51.100.1:80 gate\n    fallback=127.0.0.1:80\n"
)
V6 = Route(ip_address("2001:db8::10"), interface="vip0")


def test_routes_print_as_ip_would_show_them():
    assert str(TABLE) == "route 192.0.2.10/32 table 100"
    assert str(V6) == "address 2001:db8::10/128 dev vip0"


def test_a_shared_vip_is_announced_while_any_of_its_virtuals_carries_traffic():
    assert configured(TWO.virtuals) == {TABLE, V6}
    state = {"tcp/192.0.2.10:80": True, "tcp/192.0.2.10:443": False}
    assert TABLE in desired(TWO.virtuals, state)
    state["tcp/192.0.2.10:443"] = True
    assert TABLE not in desired(TWO.virtuals, state)


def test_nothing_is_announced_before_health_is_known():
    assert desired(TWO.virtuals, {}) == frozenset()
    assert carries(TWO.virtuals[0], None) is False


def test_announce_fallback_keeps_the_route_on_the_fallback_alone():
    v6 = TWO.virtuals[2]
    assert carries(v6, True) is True  # announce_fallback=yes and a fallback
    assert carries(TWO.virtuals[0], True) is False  # the default: withdraw


def test_plan_withdraws_first_and_reassert_announces_everything_again():
    other = Route(ip_address("192.0.2.30"), table=100)
    steps = plan(frozenset({TABLE, V6}), frozenset({TABLE, other}))
    assert steps.withdraw == (other,)
    assert steps.announce == (V6,)
    again = plan(frozenset({TABLE}), frozenset({TABLE}), reassert=True)
    assert again.announce == (TABLE,)
    assert not plan(frozenset({TABLE}), frozenset({TABLE}))


class Table:
    """An in-memory kernel route table that can be told to refuse changes."""

    def __init__(self, present: set[Route] | None = None) -> None:
        self.routes: set[Route] = set(present or ())
        self.refuse = 0  # errno to refuse every change with; 0: accept
        self.calls: list[str] = []
        self.closed = False

    async def announce(self, route: Route) -> None:
        self._check(route, "announce")
        self.routes.add(route)

    async def withdraw(self, route: Route) -> None:
        self._check(route, "withdraw")
        self.routes.discard(route)

    async def present(self, route: Route) -> bool:
        return route in self.routes

    def close(self) -> None:
        self.closed = True

    def _check(self, route: Route, what: str) -> None:
        self.calls.append(f"{what} {route}")
        if self.refuse:
            raise RouteError(route, self.refuse, errno.errorcode[self.refuse])


def announcer(cfg: Config, table: Table) -> Announcer:
    return Announcer(cfg, open_table=lambda: table)


async def test_the_announcer_follows_the_virtuals_and_withdraws_on_stop():
    table = Table()
    a = announcer(TWO, table)
    web, tls, v6 = TWO.virtuals[:3]
    await a.on_fallback(web, False)
    assert table.routes == set()  # not before the engine runs
    with capture_logs() as logs:
        await a.on_state("running")
    assert table.routes == {TABLE}
    assert [e["event"] for e in logs] == ["route.announced"]
    await a.on_fallback(v6, True)  # only its fallback left: kept by announce_fallback
    await a.sync()
    assert table.routes == {TABLE, V6}
    await a.on_fallback(web, True)
    await a.on_fallback(tls, True)
    await a.sync()
    assert table.routes == {V6}
    await a.on_state("stopping")
    assert table.routes == set()
    await a.aclose()
    assert table.closed


async def test_a_refused_route_is_logged_and_retried_never_raised():
    table = Table()
    table.refuse = errno.EPERM
    a = announcer(TWO, table)
    await a.on_fallback(TWO.virtuals[0], False)
    with capture_logs() as logs:
        await a.on_state("running")
    assert [(e["event"], e["errno"]) for e in logs] == [("route.apply_failed", errno.EPERM)]
    assert a.failing == {TABLE}
    assert a.announced == frozenset()
    table.refuse = 0
    await a.sync()
    assert table.routes == {TABLE}
    assert a.failing == frozenset()


async def test_the_run_loop_retries_a_refusal_without_a_new_event(monkeypatch):
    import asyncio

    monkeypatch.setattr(announcer_module, "RETRY", 0.01)
    table = Table()
    table.refuse = errno.ENODEV
    a = announcer(TWO, table)
    await a.on_fallback(TWO.virtuals[0], False)
    await a.on_state("running")
    task = asyncio.create_task(a.run())
    await asyncio.sleep(0.05)
    table.refuse = 0
    for _ in range(100):
        if table.routes:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert table.routes == {TABLE}
    assert len(table.calls) >= 3  # the first refusal, at least one retry, the success


async def test_a_leftover_route_is_adopted_and_withdrawn_when_not_wanted():
    table = Table(present={TABLE})  # a crash left it behind
    a = announcer(TWO, table)
    await a.on_fallback(TWO.virtuals[0], True)
    await a.on_fallback(TWO.virtuals[1], True)
    await a.on_state("running")
    assert table.routes == set()


async def test_reassert_puts_back_a_route_deleted_by_hand():
    table = Table()
    a = announcer(TWO, table)
    await a.on_fallback(TWO.virtuals[0], False)
    await a.on_state("running")
    table.routes.clear()
    await a.sync(reassert=True)
    assert table.routes == {TABLE}


async def test_a_reload_that_drops_the_virtual_withdraws_its_route():
    table = Table()
    a = announcer(TWO, table)
    await a.on_fallback(TWO.virtuals[0], False)
    await a.on_state("running")
    a.reconfigure(config("virtual=192.0.2.10:80\n    real=198.51.100.1:80 gate\n"))
    await a.sync()
    assert table.routes == set()


async def test_a_configuration_without_announce_never_opens_rtnetlink():
    opened = []
    a = Announcer(TWO.__class__(path="x.cf", virtuals=TWO.virtuals[3:]), open_table=opened.append)
    await a.on_fallback(TWO.virtuals[3], False)
    await a.on_state("running")
    await a.on_state("stopping")
    await a.aclose()
    assert opened == []


@pytest.mark.parametrize("module", ["healthd.app", "healthd.routes.announcer"])
def test_the_announcer_loads_no_pyroute2(module):
    code = f"import sys, {module}\nprint('pyroute2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_the_metrics_show_each_configured_route():
    from healthd.web.cluster import cluster_families

    table = Table()
    a = announcer(TWO, table)
    await a.on_fallback(TWO.virtuals[0], False)
    await a.on_state("running")
    samples = {
        (s.name, s.labels["route"]): s.value for f in cluster_families([a]) for s in f.samples
    }
    assert samples == {
        ("healthd_route_announced", str(TABLE)): 1,
        ("healthd_route_announced", str(V6)): 0,
        ("healthd_route_failing", str(TABLE)): 0,
        ("healthd_route_failing", str(V6)): 0,
    }
    assert a.view() == {
        "routes": [
            {"route": str(V6), "announced": False, "error": False},
            {"route": str(TABLE), "announced": True, "error": False},
        ]
    }


async def test_an_unexpected_error_of_the_route_table_is_logged_never_raised():
    class Broken(Table):
        async def announce(self, route: Route) -> None:
            raise ValueError("cannot open a handle")

    a = announcer(TWO, Broken())
    await a.on_fallback(TWO.virtuals[0], False)
    with capture_logs() as logs:
        await a.on_state("running")
    assert [(e["event"], e["log_level"]) for e in logs] == [("route.apply_failed", "error")]
    assert a.failing == {TABLE}
