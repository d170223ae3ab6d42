"""Operator overrides (healthd.overrides) as data in the pure desired-table planning."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from healthd.health import check_key, initial
from healthd.ipvs.types import Dest, DestKey, Protocol, Service, ServiceEntry, ServiceKey, Table
from healthd.model import Config, Fallback, Forward, Proto, Real, Virtual
from healthd.overrides import Mode, Override, OverrideError, Overrides, from_dict
from healthd.reconcile import desired_table, plan, service_key

VIP = ip_address("192.0.2.10")
R1 = Real(ip_address("198.51.100.1"), 80, Forward.GATE, 2)
R2 = Real(ip_address("198.51.100.2"), 80, Forward.GATE, 3)
TCP80 = ServiceKey(Protocol.TCP, VIP, 80)
NAME = "tcp/192.0.2.10:80"


def cfg(quiescent: bool = False, fallback: Fallback | None = None) -> Config:
    v = Virtual(Proto.TCP, VIP, 80, reals=(R1, R2), quiescent=quiescent, fallback=fallback)
    return Config("t.cf", (v,))


def weights(config: Config, *overrides: Override, up=(True, True), present=()) -> dict:
    """Return the desired dests of TCP80 as {last octet: weight}."""
    v = config.virtuals[0]
    health = {check_key(v, r): initial(u) for r, u in zip(v.reals, up, strict=True)}
    store = Overrides(overrides)
    store.index(config, service_key)
    dests = {DestKey(ip_address(f"198.51.100.{n}"), 80) for n in present}
    actual = Table({TCP80: ServiceEntry(Service(TCP80), {k: Dest(k, 1) for k in dests})})
    table = desired_table(config, health, actual=actual, overrides=store.by_service)
    dests = table.services[TCP80].dests
    return {".".join(str(k.address).split(".")[2:]): d.weight for k, d in dests.items()}


def test_no_override_leaves_the_plan_as_health_says():
    assert weights(cfg()) == {"100.1": 2, "100.2": 3}


def test_a_weight_override_replaces_the_configured_weight_of_an_up_real():
    assert weights(cfg(), Override(NAME, "198.51.100.1:80", weight=7)) == {"100.1": 7, "100.2": 3}


def test_a_weight_override_does_not_bring_a_down_real_in():
    config = cfg(quiescent=True)
    got = weights(
        config, Override(NAME, "198.51.100.1:80", weight=7), up=(False, True), present=(1,)
    )
    assert got == {"100.1": 0, "100.2": 3}


def test_maint_takes_an_up_real_out_as_a_down_one():
    assert weights(cfg(), Override(NAME, "198.51.100.1:80", Mode.MAINT)) == {"100.2": 3}
    quiet = weights(
        cfg(quiescent=True), Override(NAME, "198.51.100.1:80", Mode.MAINT), present=(1, 2)
    )
    assert quiet == {"100.1": 0, "100.2": 3}


def test_drain_keeps_the_real_at_weight_zero_even_without_quiescent():
    assert weights(cfg(), Override(NAME, "198.51.100.2:80", Mode.DRAIN)) == {"100.1": 2, "100.2": 0}


def test_drained_removes_the_real_even_when_quiescent():
    got = weights(
        cfg(quiescent=True), Override(NAME, "198.51.100.2:80", Mode.DRAINED), present=(1, 2)
    )
    assert got == {"100.1": 2}


def test_draining_the_last_real_brings_the_fallback_in():
    fb = Fallback(ip_address("203.0.113.1"), 80, Forward.MASQ)
    store = [
        Override(NAME, "198.51.100.1:80", Mode.DRAIN),
        Override(NAME, "198.51.100.2:80", Mode.DRAIN),
    ]
    assert weights(cfg(fallback=fb), *store) == {"100.1": 0, "100.2": 0, "113.1": 1}


def test_the_plan_of_a_drain_is_one_weight_edit_and_idempotent():
    config = cfg()
    v = config.virtuals[0]
    health = {check_key(v, r): initial(True) for r in v.reals}
    actual = desired_table(config, health, actual=Table())
    store = Overrides([Override(NAME, "198.51.100.2:80", Mode.DRAIN)])
    store.index(config, service_key)
    want = desired_table(config, health, actual=actual, overrides=store.by_service)
    ops = plan(want, actual, owned={TCP80})
    assert [str(op) for op in ops] == ["edit-dest tcp/192.0.2.10:80 198.51.100.2:80 route w=0"]
    assert plan(want, want, owned={TCP80}) == []


def test_index_drops_overrides_of_reals_no_longer_configured():
    store = Overrides(
        [
            Override(NAME, "198.51.100.1:80", Mode.MAINT),
            Override(NAME, "198.51.100.9:80", Mode.MAINT),
        ]
    )
    gone = store.index(cfg(), service_key)
    assert [o.real for o in gone] == ["198.51.100.9:80"]
    assert [o.real for o in store] == ["198.51.100.1:80"]
    assert store.by_service == {TCP80: {0: store.get(NAME, "198.51.100.1:80")}}


def test_an_override_round_trips_through_plain_data():
    o = Override(NAME, "198.51.100.1:80", Mode.DRAIN, 5, since=12.5, deadline=99.0)
    assert from_dict(o.as_dict()) == o


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"virtual": NAME}, "needs a virtual and a real"),
        ({"virtual": NAME, "real": "x", "mode": "sleep"}, "unknown mode 'sleep'"),
        ({"virtual": NAME, "real": "x", "weight": 70000}, "weight 70000 out of range"),
        ({"virtual": NAME, "real": "x", "weight": True}, "weight True out of range"),
        ({"virtual": NAME, "real": "x", "since": "now"}, "since must be a number"),
    ],
)
def test_malformed_overrides_are_refused_with_a_reason(data, message):
    with pytest.raises(OverrideError, match=message):
        from_dict(data)


def test_clearing_an_override_removes_it():
    store = Overrides([Override(NAME, "198.51.100.1:80", Mode.MAINT)])
    store.put(Override(NAME, "198.51.100.1:80"))
    assert len(store) == 0
    assert store.version == 1
