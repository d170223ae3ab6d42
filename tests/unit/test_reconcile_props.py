"""Hypothesis properties of healthd.reconcile.plan and desired_table, run on FakeDriver.

From any starting table (foreign services included) the plan converges on the desired table
for owned services, leaves every other service untouched, is empty when run again, keeps its
ordering invariants, is minimal (each op changes something, no entry is touched twice) and
deterministic, and never deletes a quiescent real's destination. Planned service by service
(the engine's incremental path), it is the full plan restricted to those services.
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_address

from hypothesis import example, given, settings
from hypothesis import strategies as st

from healthd.health import check_key, initial
from healthd.ipvs.driver import apply_all
from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    Method,
    Op,
    Protocol,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)
from healthd.kernel_view import op_service
from healthd.model import CheckSpec, CheckType, Config, Fallback, Forward, Proto, Real, Virtual
from healthd.reconcile import (
    desired_service,
    desired_table,
    owned_keys,
    plan,
    plan_service,
    prepare,
    real_dest,
    service_key,
    sort_ops,
)

V4 = [ip_address(f"198.51.100.{i}") for i in range(1, 5)]
V6 = [ip_address(f"2001:db8::{i}") for i in range(1, 5)]
VIPS = [ip_address("192.0.2.10"), ip_address("192.0.2.11"), ip_address("2001:db8:1::10")]

service_keys = st.one_of(
    st.builds(
        ServiceKey,
        st.sampled_from([Protocol.TCP, Protocol.UDP, Protocol.SCTP]),
        st.sampled_from(VIPS),
        st.sampled_from([80, 443]),
    ),
    st.builds(
        lambda mark, family: ServiceKey(Protocol.FWM, None, 0, mark, family),
        st.integers(1, 3),
        st.sampled_from([4, 6]),
    ),
)


@st.composite
def services(draw: st.DrawFn, key: ServiceKey) -> Service:
    persistent = draw(st.one_of(st.none(), st.integers(1, 600)))
    ops = key.proto in (Protocol.UDP, Protocol.FWM) and draw(st.booleans())
    flags = draw(st.frozensets(st.sampled_from(["flag-1", "flag-2"])))
    return Service(key, draw(st.sampled_from(["wrr", "rr", "sh"])), persistent, None, ops, flags)


@st.composite
def dests(draw: st.DrawFn, family: int) -> Dest:
    upper = draw(st.sampled_from([0, 100]))
    return Dest(
        DestKey(draw(st.sampled_from(V4 if family == 4 else V6)), draw(st.sampled_from([0, 80]))),
        weight=draw(st.integers(0, 3)),
        method=draw(st.sampled_from(list(Method))),
        upper=upper,
        lower=draw(st.sampled_from([0, upper // 2])),
    )


@st.composite
def tables(draw: st.DrawFn) -> Table:
    keys = draw(st.lists(service_keys, max_size=4, unique=True))
    result = {}
    for key in keys:
        ds = draw(st.lists(dests(key.family), max_size=4, unique_by=lambda x: x.key))
        result[key] = ServiceEntry(draw(services(key)), {x.key: x for x in ds})
    return Table(result)


def run(table: Table, ops: list[Op]) -> Table:
    """Apply ops on a FakeDriver holding `table` and return the dump."""

    async def go() -> Table:
        driver = FakeDriver(table)
        await apply_all(driver, ops)
        return await driver.dump()

    return asyncio.run(go())


def run_steps(table: Table, ops: list[Op]) -> list[Table]:
    """Apply ops one by one on a FakeDriver; return the table after each op."""

    async def go() -> list[Table]:
        driver = FakeDriver(table)
        seen = []
        for op in ops:
            await driver.apply(op)
            seen.append(await driver.dump())
        return seen

    return asyncio.run(go())


def _serving(table: Table, key: ServiceKey) -> bool:
    entry = table.services.get(key)
    return entry is not None and any(d.weight > 0 for d in entry.dests.values())


def check_make_before_break(actual: Table, desired: Table, ops: list[Op]) -> Table:
    """Assert no service that serves before and after the plan stops serving in between."""
    steps = run_steps(actual, ops)
    for key in desired.services:
        if _serving(actual, key) and _serving(desired, key):
            assert all(_serving(t, key) for t in steps), f"{key} stopped serving mid-plan"
    return steps[-1] if steps else run(actual, [])


@st.composite
def kernels(draw: st.DrawFn, cfg: Config) -> Table:
    """Return a random table that holds some of cfg's services and reals, and foreign ones."""
    result = dict(draw(tables()).services)
    for v in cfg.virtuals:
        if not draw(st.booleans()):
            continue
        ds = [real_dest(v, r, weight=draw(st.integers(0, 2))) for r in v.reals]
        ds = [x for x in ds if draw(st.booleans())] + draw(st.lists(dests(4), max_size=2))
        result[service_key(v)] = ServiceEntry(
            draw(services(service_key(v))), {x.key: x for x in ds}
        )
    return Table(result)


def check_order(ops: list[Op]) -> None:
    """Assert the ordering invariants of a plan."""
    for i, op in enumerate(ops):
        key = op_service(op)
        before, after = ops[:i], ops[i + 1 :]
        if isinstance(op, AddDest | EditDest):
            assert not any(isinstance(o, AddService) and o.service.key == key for o in after)
        if isinstance(op, DelService):
            assert not any(op_service(o) == key for o in after)
        if isinstance(op, DelDest):
            grows = [o for o in after if isinstance(o, AddDest | EditDest)]
            assert not any(o.service == key for o in grows)
        if isinstance(op, AddService):
            assert not any(op_service(o) == key for o in before)


_KEY = ServiceKey(Protocol.TCP, VIPS[0], 80)
_A, _B = DestKey(V4[0], 80), DestKey(V4[1], 80)


@settings(deadline=None, max_examples=100)
@given(desired=tables(), actual=tables(), extra=st.sets(service_keys, max_size=3))
@example(  # the fallback case: the only serving dest is quiesced while another is added
    desired=Table({_KEY: ServiceEntry(Service(_KEY), {_A: Dest(_A, 0), _B: Dest(_B, 1)})}),
    actual=Table({_KEY: ServiceEntry(Service(_KEY), {_A: Dest(_A, 1)})}),
    extra=set(),
)
def test_plan_converges_and_is_idempotent(desired, actual, extra):
    owned = frozenset(desired.services) | frozenset(extra)
    ops = plan(desired, actual, owned=owned)
    check_order(ops)
    after = check_make_before_break(actual, desired, ops)
    assert plan(desired, after, owned=owned) == []
    for key, entry in after.services.items():
        if key in desired.services:
            assert entry == desired.services[key]
        else:
            assert key not in owned
            assert entry == actual.services[key], "a foreign service changed"
    assert set(desired.services) <= set(after.services)
    for op in ops:
        assert op_service(op) in owned
        if isinstance(op, DelService):
            assert op.key not in desired.services


def _target(op: Op) -> tuple[ServiceKey, DestKey | None]:
    if isinstance(op, AddDest | EditDest):
        return (op.service, op.dest.key)
    if isinstance(op, DelDest):
        return (op.service, op.key)
    return (op_service(op), None)


def _reversed(table: Table) -> Table:
    """Return the same table with services and destinations in the opposite order."""
    return Table(
        {
            key: ServiceEntry(e.service, dict(reversed(e.dests.items())))
            for key, e in reversed(table.services.items())
        }
    )


@settings(deadline=None, max_examples=100)
@given(desired=tables(), actual=tables(), extra=st.sets(service_keys, max_size=3))
def test_plan_is_minimal_and_deterministic(desired, actual, extra):
    """Every op changes the table, no entry is touched twice, and table order does not matter."""
    owned = frozenset(desired.services) | frozenset(extra)
    ops = plan(desired, actual, owned=owned)
    assert plan(_reversed(desired), _reversed(actual), owned=owned) == ops
    targets = [_target(op) for op in ops]
    assert len(targets) == len(set(targets)), "an entry is touched twice"
    seen = [run(actual, []), *run_steps(actual, ops)]
    for op, before, after in zip(ops, seen[:-1], seen[1:], strict=True):
        assert before != after, f"{op} changed nothing"


# --- desired_table over generated configs -------------------------------------------------

reals = st.builds(
    Real,
    st.sampled_from(V4),
    st.sampled_from([0, 80, 8080]),
    st.sampled_from(list(Forward)),
    st.integers(0, 3),
)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    virtuals = []
    for port in draw(st.lists(st.sampled_from([80, 443, 0]), min_size=1, max_size=3, unique=True)):
        fwm = port == 0
        virtuals.append(
            Virtual(
                Proto.FWM if fwm else Proto.TCP,
                None if fwm else VIPS[0],
                port,
                fwmark=1 if fwm else 0,
                reals=tuple(draw(st.lists(reals, max_size=4))),
                check=CheckSpec(checktype=draw(st.sampled_from(list(CheckType)))),
                quiescent=draw(st.booleans()),
                fallback=draw(st.one_of(st.none(), st.just(Fallback(V4[3], 80)))),
            )
        )
    return Config("p.cf", tuple(virtuals), readdquiescent=draw(st.booleans()))


@settings(deadline=None, max_examples=100)
@given(cfg=configs(), data=st.data())
def test_desired_tables_converge_and_never_delete_quiescent_reals(cfg, data):
    actual = data.draw(kernels(cfg))
    keys = sorted({check_key(v, r) for v in cfg.virtuals for r in v.reals}, key=str)
    health = {k: initial(data.draw(st.booleans())) for k in keys}
    forced = set(data.draw(st.lists(st.sampled_from(keys), unique=True))) if keys else set()
    desired = desired_table(cfg, health, forced, actual=actual)
    owned = owned_keys(cfg)
    ops = plan(desired, actual, owned=owned)
    check_order(ops)
    after = check_make_before_break(actual, desired, ops)
    assert plan(desired_table(cfg, health, forced, actual=after), after, owned=owned) == []
    for v in cfg.virtuals:
        if not v.quiescent:
            continue
        real_keys = {real_dest(v, r).key for r in v.reals}
        deleted = {op.key for op in ops if isinstance(op, DelDest) and op.service == service_key(v)}
        assert not deleted & real_keys, "a quiescent real's destination was deleted"


# --- planning service by service ------------------------------------------------------------


@settings(deadline=None, max_examples=100)
@given(desired=tables(), actual=tables(), extra=st.sets(service_keys, max_size=3), data=st.data())
def test_planning_dirty_services_one_by_one_equals_the_full_plan_restricted(
    desired, actual, extra, data
):
    owned = frozenset(desired.services) | frozenset(extra)
    full = plan(desired, actual, owned=owned)
    candidates = sorted(owned | set(actual.services), key=str)
    dirty = data.draw(st.lists(st.sampled_from(candidates), unique=True)) if candidates else []
    merged: list[Op] = []
    for key in dirty:
        if key not in owned:
            continue  # the engine marks only its own virtuals' services
        ops = plan_service(desired.services.get(key), actual.services.get(key), key)
        assert ops == [op for op in full if op_service(op) == key], str(key)
        merged.extend(ops)
    assert sort_ops(merged) == [op for op in full if op_service(op) in set(dirty)]


@settings(deadline=None, max_examples=50)
@given(cfg=configs(), data=st.data())
def test_desired_service_is_the_desired_table_entry(cfg, data):
    actual = data.draw(kernels(cfg))
    keys = sorted({check_key(v, r) for v in cfg.virtuals for r in v.reals}, key=str)
    health = {k: initial(data.draw(st.booleans())) for k in keys}
    starting = data.draw(st.booleans())
    table = desired_table(cfg, health, actual=actual, starting=starting)
    for v in cfg.virtuals:
        key = service_key(v)
        entry = desired_service(
            v,
            health,
            actual_entry=actual.services.get(key),
            starting=starting,
            readdquiescent=cfg.readdquiescent,
        )
        assert entry == table.services[key]
        prepared = desired_service(
            v,
            health,
            actual_entry=actual.services.get(key),
            starting=starting,
            readdquiescent=cfg.readdquiescent,
            prepared=prepare(v, [check_key(v, r) for r in v.reals]),
        )
        assert prepared == entry
