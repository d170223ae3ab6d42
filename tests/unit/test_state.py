"""The engine's pure bookkeeping: the topology, slots across reloads, the table after each op."""

from __future__ import annotations

from ipaddress import ip_address

from healthd import health as hl
from healthd.book import HealthBook
from healthd.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    Protocol,
    Service,
    ServiceKey,
    Table,
)
from healthd.kernel_view import KernelView, apply_to, op_service
from healthd.model import CheckSpec, CheckType, Config, Proto, Real, Virtual
from healthd.reconcile import initial_health
from healthd.topology import Topology

SVC = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
D1 = DestKey(ip_address("198.51.100.1"), 80)


def test_apply_to_follows_every_op():
    table = apply_to(Table(), AddService(Service(SVC)))
    table = apply_to(table, AddDest(SVC, Dest(D1, 3)))
    assert table.services[SVC].dests[D1].weight == 3
    table = apply_to(table, EditDest(SVC, Dest(D1, 0)))
    assert table.services[SVC].dests[D1].weight == 0
    table = apply_to(table, EditService(Service(SVC, scheduler="rr")))
    assert table.services[SVC].service.scheduler == "rr"
    assert D1 in table.services[SVC].dests  # an edit keeps the dests
    table = apply_to(table, DelDest(SVC, D1))
    assert table.services[SVC].dests == {}
    other = ServiceKey(Protocol.UDP, ip_address("192.0.2.10"), 53)
    assert apply_to(table, DelDest(other, D1)) == table  # nothing to delete: unchanged
    assert apply_to(table, DelService(SVC)).services == {}


def config(*reals: Real, checktype: CheckType = CheckType.CONNECT) -> Config:
    v = Virtual(
        Proto.TCP, ip_address("192.0.2.10"), 80, reals=reals, check=CheckSpec(checktype=checktype)
    )
    return Config("x.cf", virtuals=(v,))


def test_slots_keep_health_and_ids_of_kept_keys():
    r1, r2 = Real(ip_address("198.51.100.1"), 80), Real(ip_address("198.51.100.2"), 80)
    slots = HealthBook()
    first = config(r1, r2)
    assert slots.install(Topology.of(first), initial_health(first, Table())) == (0, 2, 0)
    key1 = hl.check_key(first.virtuals[0], r1)
    slot = slots.by_key[key1]
    slot.health = hl.initial(True)
    second = config(r1)
    assert slots.install(Topology.of(second), initial_health(second, Table())) == (1, 0, 1)
    assert slots[key1].up is True  # kept, not reset from the (empty) kernel
    assert slots.by_id[slot.id] is slot
    assert len(slots) == 1
    assert list(slots) == [key1]
    third = config(r1, checktype=CheckType.PING)
    assert slots.install(Topology.of(third), initial_health(third, Table())) == (0, 1, 1)
    assert slots.by_key[hl.check_key(third.virtuals[0], r1)].id != slot.id


def test_kernel_view_plans_dirty_services_against_its_record():
    r1, r2 = Real(ip_address("198.51.100.1"), 80), Real(ip_address("198.51.100.2"), 80)
    cfg = config(r1, r2)
    slots = HealthBook()
    topology = Topology.of(cfg)
    slots.install(topology, {k: hl.initial(True) for k in hl.check_groups(cfg)})
    view = KernelView()
    view.index(topology)
    assert view.virtuals == {SVC: cfg.virtuals[0]}
    full = view.plan_all(cfg, slots, set(), owned={SVC}, starting=True)
    for op in full:
        view.applied(op)
    assert {d.weight for d in view.services[SVC].dests.values()} == {1}
    assert view.plan_dirty({SVC}, cfg, slots, set()) == []  # the record is current
    slots.by_key[hl.check_key(cfg.virtuals[0], r2)].health = hl.initial(False)
    view.dirty.add(SVC)
    dirty = view.take()
    assert view.dirty == set()
    ops = view.plan_dirty(dirty, cfg, slots, set())
    assert [str(op) for op in ops] == [f"del-dest {SVC} 198.51.100.2:80"]
    assert [op_service(op) for op in ops] == [SVC]
    assert op_service(AddService(Service(SVC))) == op_service(DelService(SVC)) == SVC
    other = ServiceKey(Protocol.UDP, ip_address("192.0.2.10"), 53)
    assert view.plan_dirty({other}, cfg, slots, set()) == []  # not a configured service
    snapshot = view.table()
    view.applied(ops[0])
    assert len(view.services[SVC].dests) == 1
    assert len(snapshot.services[SVC].dests) == 2, "a snapshot does not follow later ops"
    view.replace(Table())
    assert view.services == {}


def test_the_topology_agrees_with_the_pure_translators():
    r1, r2 = Real(ip_address("198.51.100.1"), 80), Real(ip_address("198.51.100.2"), 8080)
    cfg = config(r1, r2)
    topology = Topology.of(cfg)
    assert dict(topology.groups) == hl.check_groups(cfg)
    assert topology.keys_of(cfg.virtuals[0]) == tuple(
        hl.check_key(cfg.virtuals[0], r) for r in (r1, r2)
    )
    assert topology.owned == {SVC}
    table = apply_to(Table(), AddService(Service(SVC)))
    table = apply_to(table, AddDest(SVC, Dest(D1, 2)))
    assert topology.initial_health(table, now=5.0) == initial_health(cfg, table, now=5.0)
    assert topology.forced_down({"198.51.100.2:8080"}) == {hl.check_key(cfg.virtuals[0], r2)}


def test_the_book_holds_maintenance_in_one_place():
    r1 = Real(ip_address("198.51.100.1"), 80)
    cfg = config(r1)
    book = HealthBook()
    topology = Topology.of(cfg)
    book.install(topology, {k: hl.initial(True) for k in topology.groups})
    key = hl.check_key(cfg.virtuals[0], r1)
    slot = book.by_key[key]
    assert not book.is_held(slot.id)
    transition = book.hold(key, "maintenance", now=1.0)
    assert transition is not None
    assert transition.kind is hl.Kind.DOWN
    assert book.forced == {key}
    assert book.is_held(slot.id)
    assert book[key].forced == "maintenance"
    book.let_go(key)
    assert book.forced == set()
    assert book[key].forced is None
    assert not book[key].up
    book.hold(key, "maintenance", now=2.0)
    book.install(Topology.of(config()), {})
    assert book.forced == set(), "a key gone with a reload is no longer held"
