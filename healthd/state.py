"""The engine's in-memory state: health slots, its view of the kernel table, the status view.

A slot is one shared health entry (a check key, the (virtual, real) pairs that share it, its
probe). KernelView is the engine's record of the table and of the services to plan next.
Pure bookkeeping and rendering: no I/O, no asyncio; the engine decides and acts.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from checks.base import Result
from healthd import health as hl
from healthd import probes
from healthd.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    Op,
    ServiceEntry,
    ServiceKey,
    Table,
)
from healthd.model import Config, Real, Virtual
from healthd.reconcile import (
    Prepared,
    desired_service,
    desired_table,
    is_up,
    plan,
    plan_service,
    prepare,
    real_dest,
    service_key,
    sort_ops,
)

Member = tuple[Virtual, Real]


@dataclass(slots=True)
class Slot:
    """One health entry: a check key, the (virtual, real) pairs sharing it, its probe."""

    id: int  # the scheduler's key: cheap to hash on the per-result path
    key: hl.CheckKey
    members: list[Member]
    health: hl.Health
    probe: probes.Probe | None = None
    services: tuple[ServiceKey, ...] = ()  # the services its members are in, to mark dirty


class Slots(Mapping[hl.CheckKey, hl.Health]):
    """Every slot, by check key and by id; as a Mapping, each key's health (for reconcile)."""

    def __init__(self) -> None:
        self.by_key: dict[hl.CheckKey, Slot] = {}
        self.by_id: dict[int, Slot] = {}
        self._ids = itertools.count()

    def __getitem__(self, key: hl.CheckKey) -> hl.Health:
        return self.by_key[key].health

    def __iter__(self) -> Iterator[hl.CheckKey]:
        return iter(self.by_key)

    def __len__(self) -> int:
        return len(self.by_key)

    def install(
        self, config: Config, fresh: Mapping[hl.CheckKey, hl.Health]
    ) -> tuple[int, int, int]:
        """Match the slots to `config`; kept keys keep health and probe. Return kept/added/gone."""
        old, slots = self.by_key, {}
        for key, members in hl.check_groups(config).items():
            slot = old.get(key)
            if slot is None:
                slot = Slot(next(self._ids), key, members, fresh[key])
            slot.members = members
            slot.services = tuple(dict.fromkeys(service_key(v) for v, _ in members))
            slots[key] = slot
        kept = len(slots.keys() & old.keys())
        gone = len(old) - kept
        self.by_key = slots
        self.by_id = {slot.id: slot for slot in slots.values()}
        return kept, len(slots) - kept, gone


class KernelView:
    """The engine's record of the kernel table, and the services whose plan is due.

    `services` follows each applied op (`applied`) and is replaced by every dump
    (`replace`); `stale` says an op failed, so the record may be wrong and the next
    reconcile dumps first. `dirty` services are planned alone against the record.
    """

    def __init__(self) -> None:
        self.services: dict[ServiceKey, ServiceEntry] = {}
        self.dirty: set[ServiceKey] = set()
        self.stale = False
        self.virtuals: dict[ServiceKey, Virtual] = {}  # each service's virtual, config order
        self._prepared: dict[ServiceKey, Prepared] = {}

    def index(self, config: Config, slots: Slots) -> None:
        """Prepare every virtual of `config` once, with the slots' own health keys."""
        keys = {(id(v), id(r)): s.key for s in slots.by_key.values() for v, r in s.members}
        self.virtuals = {service_key(v): v for v in config.virtuals}
        self._prepared = {
            key: prepare(v, [keys[id(v), id(r)] for r in v.reals])
            for key, v in self.virtuals.items()
        }

    def take(self) -> set[ServiceKey]:
        """Return the dirty services and start a new set."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    def replace(self, table: Table) -> None:
        """Take a fresh dump as the record."""
        self.services = dict(table.services)

    def applied(self, op: Op) -> None:
        """Record an op the kernel accepted."""
        apply_in_place(self.services, op)

    def table(self) -> Table:
        """Return a snapshot of the record."""
        return Table(dict(self.services))

    def plan_all(
        self,
        config: Config,
        health: Slots,
        forced: AbstractSet[hl.CheckKey],
        *,
        owned: AbstractSet[ServiceKey],
        starting: bool,
    ) -> list[Op]:
        """Return the plan for the whole table, against the record (fresh from a dump)."""
        actual = Table(self.services)
        desired = desired_table(
            config, health, forced, actual=actual, starting=starting, prepared=self._prepared
        )
        return plan(desired, actual, owned=owned)

    def plan_dirty(
        self,
        dirty: AbstractSet[ServiceKey],
        config: Config,
        health: Slots,
        forced: AbstractSet[hl.CheckKey],
    ) -> list[Op]:
        """Return the plan for the `dirty` services alone, against the record."""
        ops: list[Op] = []
        for key in dirty:
            virtual = self.virtuals.get(key)
            if virtual is None:
                continue  # dropped by a reload, whose full reconcile dealt with it
            have = self.services.get(key)
            want = desired_service(
                virtual,
                health,
                forced,
                actual_entry=have,
                readdquiescent=config.readdquiescent,
                prepared=self._prepared.get(key),
            )
            ops.extend(plan_service(want, have, key))
        return sort_ops(ops)

    def virtuals_of(self, keys: AbstractSet[ServiceKey]) -> list[Virtual]:
        """Return the virtuals of these services in config order (hooks run in a stable order)."""
        return [v for k, v in self.virtuals.items() if k in keys]


def op_service(op: Op) -> ServiceKey:
    """Return the service an op changes."""
    if isinstance(op, AddService | EditService):
        return op.service.key
    if isinstance(op, DelService):
        return op.key
    return op.service


def apply_to(table: Table, op: Op) -> Table:
    """Return `table` as the kernel holds it after `op` succeeded (a new table)."""
    services = dict(table.services)
    apply_in_place(services, op)
    return Table(services)


def apply_in_place(services: dict[ServiceKey, ServiceEntry], op: Op) -> None:
    """Update `services` to what the kernel holds after `op` succeeded (the engine's cache).

    Costs one service's dests, not the table: entries are replaced, never mutated, so a
    shallow copy of `services` is a consistent snapshot.
    """
    match op:
        case AddService(service=s) | EditService(service=s):
            old = services.get(s.key)
            services[s.key] = ServiceEntry(s, dict(old.dests) if old is not None else {})
        case DelService(key=k):
            services.pop(k, None)
        case AddDest(service=k, dest=d) | EditDest(service=k, dest=d) if k in services:
            services[k] = ServiceEntry(services[k].service, {**services[k].dests, d.key: d})
        case DelDest(service=k, key=dk) if k in services:
            dests = {key: d for key, d in services[k].dests.items() if key != dk}
            services[k] = ServiceEntry(services[k].service, dests)


def result_view(result: Result | None) -> dict[str, object] | None:
    """Return a check result as plain data (status, reason, detail, elapsed_ms)."""
    if result is None:
        return None
    return {
        "status": str(result.status),
        "reason": result.reason,
        "detail": result.detail,
        "elapsed_ms": round(result.elapsed * 1000, 1),
    }


def virtual_view(
    virtual: Virtual,
    slots: Slots,
    forced: AbstractSet[hl.CheckKey],
    table: Table,
    fallback_active: bool,
) -> dict[str, object]:
    """Return one virtual's status: each real's health, failures, last result, kernel weight."""
    entry = table.services.get(service_key(virtual))
    reals = []
    for real in virtual.reals:
        key = hl.check_key(virtual, real)
        slot = slots.by_key.get(key)
        health = slot.health if slot is not None else None
        dest = entry.dests.get(real_dest(virtual, real).key) if entry is not None else None
        reals.append(
            {
                "real": real.endpoint,
                "check": probes.describe(virtual),
                "up": is_up(virtual, real, slots, forced),
                "maintenance": key in forced,
                "failures": health.failures if health is not None else 0,
                "weight": real.weight,
                "kernel_weight": dest.weight if dest is not None else None,
                "last": result_view(health.last if health is not None else None),
            }
        )
    return {
        "virtual": virtual.name,
        "in_kernel": entry is not None,
        "fallback_active": fallback_active,
        "reals": reals,
    }
