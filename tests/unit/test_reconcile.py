"""Unit tests for healthd.reconcile: translation of the model, desired table, plan order."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from healthd.health import Health, check_key, initial
from healthd.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    Method,
    Protocol,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)
from healthd.model import CheckSpec, CheckType, Config, Fallback, Forward, Proto, Real, Virtual
from healthd.reconcile import (
    desired_table,
    dest_port,
    initial_health,
    owned_keys,
    plan,
    real_dest,
    service_key,
    service_of,
)

VIP = ip_address("192.0.2.10")
R1 = Real(ip_address("198.51.100.1"), 80, Forward.GATE, 2)
R2 = Real(ip_address("198.51.100.2"), 80, Forward.GATE, 3)
FB = Fallback(ip_address("203.0.113.1"), 80, Forward.MASQ)
TCP80 = ServiceKey(Protocol.TCP, VIP, 80)


def virtual(*reals: Real, **kw) -> Virtual:
    kw.setdefault("proto", Proto.TCP)
    kw.setdefault("address", VIP)
    kw.setdefault("port", 80)
    return Virtual(reals=reals, **kw)


def config(*virtuals: Virtual, **kw) -> Config:
    return Config("t.cf", virtuals, **kw)


def healths(cfg: Config, **states: bool) -> dict:
    """Health per real, by `r1=True`-style names matched on the last address octet."""
    result = {}
    for v in cfg.virtuals:
        for r in v.reals:
            up = states.get(f"r{str(r.address).rsplit('.', 1)[-1]}", False)
            result[check_key(v, r)] = initial(up)
    return result


def entry(*dests: Dest, service: Service | None = None) -> ServiceEntry:
    return ServiceEntry(service or Service(TCP80), {d.key: d for d in dests})


def d(host: str, port: int = 80, w: int = 1, method: Method = Method.ROUTE) -> Dest:
    return Dest(DestKey(ip_address(host), port), w, method)


# --- translation ---------------------------------------------------------------------------


def test_service_of_sets_persistence_and_ops_only_where_they_apply():
    plain = service_of(virtual(netmask="255.255.255.0", ops=True))
    assert (plain.persistent, plain.netmask, plain.one_packet) == (None, None, False)
    udp = service_of(virtual(proto=Proto.UDP, port=53, ops=True, persistent=60))
    assert udp.one_packet
    assert udp.netmask == "255.255.255.255"


def test_service_of_splits_ldirectord_schedflags_word():
    svc = service_of(virtual(scheduler="sh", schedflags=("sh-fallback,sh-port",)))
    assert svc.sched_flags == frozenset({"sh-fallback", "sh-port"})


def test_fwmark_service_key():
    key = service_key(Virtual(Proto.FWM, None, 0, fwmark=7, family=6))
    assert key == ServiceKey(Protocol.FWM, None, 0, 7, 6)
    assert str(key) == "fwm6/7"


@pytest.mark.parametrize(
    ("proto", "port", "forward", "expected"),
    [
        (Proto.TCP, 8080, Forward.GATE, 80),
        (Proto.TCP, 8080, Forward.IPIP, 80),
        (Proto.TCP, 8080, Forward.MASQ, 8080),
        (Proto.TCP, 0, Forward.MASQ, 80),
        (Proto.UDP, 5353, Forward.GATE, 80),
        (Proto.FWM, 0, Forward.GATE, 0),
        (Proto.FWM, 443, Forward.GATE, 443),
    ],
)
def test_dest_port(proto, port, forward, expected):
    v = Virtual(proto, None if proto is Proto.FWM else VIP, 0 if proto is Proto.FWM else 80, 1)
    assert dest_port(v, port, forward) == expected


def test_real_dest_carries_method_and_thresholds():
    real = Real(ip_address("198.51.100.1"), 8080, Forward.MASQ, 4, lower=5, upper=50)
    dest = real_dest(virtual(real), real)
    assert dest == Dest(DestKey(real.address, 8080), 4, Method.MASQ, upper=50, lower=5)


# --- desired table -------------------------------------------------------------------------


def test_up_reals_at_weight_down_reals_absent_without_quiescent():
    cfg = config(virtual(R1, R2))
    table = desired_table(cfg, healths(cfg, r1=True), actual=Table())
    assert table.services[TCP80].dests == {
        real_dest(cfg.virtuals[0], R1).key: d("198.51.100.1", w=2)
    }


def test_quiescent_down_real_kept_at_zero_only_where_present():
    cfg = config(virtual(R1, R2, quiescent=True))
    actual = Table({TCP80: entry(d("198.51.100.2", w=3))})
    dests = desired_table(cfg, healths(cfg), actual=actual).services[TCP80].dests
    assert list(dests.values()) == [d("198.51.100.2", w=0)]
    readd = desired_table(config(*cfg.virtuals, readdquiescent=True), healths(cfg), actual=Table())
    assert sorted(x.weight for x in readd.services[TCP80].dests.values()) == [0, 0]


def test_fallback_iff_no_real_carries_traffic():
    cfg = config(virtual(R1, R2, quiescent=True, fallback=FB))
    actual = Table({TCP80: entry(d("198.51.100.1", w=2), d("198.51.100.2", w=3))})
    down = desired_table(cfg, healths(cfg), actual=actual).services[TCP80].dests
    assert d("203.0.113.1", method=Method.MASQ) in down.values()
    up = desired_table(cfg, healths(cfg, r2=True), actual=actual).services[TCP80].dests
    assert DestKey(ip_address("203.0.113.1"), 80) not in up


def test_up_reals_at_configured_weight_zero_leave_the_fallback_in():
    zero = Real(ip_address("198.51.100.1"), 80, weight=0)
    cfg = config(virtual(zero, fallback=FB))
    dests = desired_table(cfg, healths(cfg, r1=True), actual=Table()).services[TCP80].dests
    assert [x.weight for x in dests.values()] == [0, 1]


def test_forced_down_beats_checktype_on_and_health():
    cfg = config(virtual(R1, check=CheckSpec(checktype=CheckType.ON)))
    key = check_key(cfg.virtuals[0], R1)
    assert desired_table(cfg, {}, actual=Table()).services[TCP80].dests
    assert not desired_table(cfg, {}, {key}, actual=Table()).services[TCP80].dests
    health = {key: Health(up=True, forced="maintenance")}
    cfg2 = config(virtual(R1))
    assert not desired_table(cfg2, health, actual=Table()).services[TCP80].dests


def test_missing_health_counts_as_down():
    cfg = config(virtual(R1))
    assert desired_table(cfg, {}, actual=Table()).services[TCP80].dests == {}


def test_two_reals_on_one_dest_an_up_one_wins():
    a = Real(ip_address("198.51.100.1"), 8080, Forward.GATE, 2)
    b = Real(ip_address("198.51.100.1"), 8081, Forward.GATE, 5)
    cfg = config(virtual(a, b, quiescent=True))
    health = {
        check_key(cfg.virtuals[0], a): initial(False),
        check_key(cfg.virtuals[0], b): initial(True),
    }
    dests = desired_table(cfg, health, actual=Table(), starting=True).services[TCP80].dests
    assert list(dests.values()) == [d("198.51.100.1", 80, w=5)]


def test_initial_health_reads_weights_and_shared_reals_take_any():
    v1 = virtual(R1, R2)
    v2 = virtual(R1, port=8080)
    cfg = config(v1, v2)
    actual = Table(
        {
            TCP80: entry(d("198.51.100.2", w=0)),
            ServiceKey(Protocol.TCP, VIP, 8080): entry(d("198.51.100.1", 8080, w=1)),
        }
    )
    health = initial_health(cfg, actual, now=7.0)
    assert health[check_key(v1, R1)].up  # absent in v1, carried by v2
    assert not health[check_key(v1, R2)].up  # weight 0 is down
    assert health[check_key(v1, R1)].since == 7.0
    assert len(health) == 2
    # the first virtual to carry a shared real decides; a later absence does not undo it
    flipped = initial_health(config(v2, v1), actual)
    assert flipped[check_key(v1, R1)].up


# --- plan ----------------------------------------------------------------------------------


def test_plan_of_equal_tables_is_empty():
    table = Table({TCP80: entry(d("198.51.100.1"))})
    assert plan(table, table, owned=frozenset()) == []


def test_plan_never_touches_unowned_services():
    foreign = Table({TCP80: entry(d("198.51.100.1"))})
    assert plan(Table(), foreign, owned=frozenset()) == []


def test_plan_deletes_an_owned_service_after_its_dests():
    actual = Table({TCP80: entry(d("198.51.100.2"), d("198.51.100.1"))})
    ops = plan(Table(), actual, owned={TCP80})
    assert ops == [
        DelDest(TCP80, DestKey(ip_address("198.51.100.1"), 80)),
        DelDest(TCP80, DestKey(ip_address("198.51.100.2"), 80)),
        DelService(TCP80),
    ]


def test_plan_edits_a_changed_service_in_place():
    want = Table({TCP80: entry(d("198.51.100.1"), service=Service(TCP80, "wlc"))})
    have = Table({TCP80: entry(d("198.51.100.1"))})
    assert plan(want, have, owned=frozenset()) == [EditService(Service(TCP80, "wlc"))]


def test_plan_order_is_make_before_break():
    fb, r1, r2, new = d("203.0.113.1"), d("198.51.100.1", w=2), d("198.51.100.2"), d("198.51.100.9")
    other = ServiceKey(Protocol.UDP, VIP, 53)
    want = Table({TCP80: entry(fb, d("198.51.100.1", w=0), d("198.51.100.2", w=5))})
    want.services[other] = ServiceEntry(Service(other), {new.key: new})  # type: ignore[index]
    have = Table({TCP80: entry(r1, r2, d("198.51.100.3"))})
    ops = plan(want, have, owned=frozenset())
    assert ops == [
        AddService(Service(other)),
        AddDest(TCP80, fb),
        AddDest(other, new),
        EditDest(TCP80, d("198.51.100.2", w=5)),
        EditDest(TCP80, d("198.51.100.1", w=0)),
        DelDest(TCP80, DestKey(ip_address("198.51.100.3"), 80)),
    ]


def test_plan_sorts_mixed_families_without_error():
    v6 = ServiceKey(Protocol.TCP, ip_address("2001:db8::1"), 80)
    fwm = ServiceKey(Protocol.FWM, None, 0, 3)
    want = Table({k: ServiceEntry(Service(k)) for k in (v6, TCP80, fwm)})
    ops = plan(want, Table(), owned=frozenset())
    assert [op.service.key for op in ops if isinstance(op, AddService)] == [fwm, TCP80, v6]


def test_owned_keys_are_config_plus_created():
    extra = ServiceKey(Protocol.UDP, VIP, 53)
    assert owned_keys(config(virtual()), [extra]) == {TCP80, extra}
