"""The engine's record of the kernel table, and the services whose plan is due.

KernelView follows each op the kernel accepted and is replaced by every dump; it plans the
dirty services alone against that record, or everything against a fresh dump, with the
topology's prepared services. Pure bookkeeping: no I/O, no asyncio; healthd.kernel_sync
dumps, applies and decides when.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from healthd import health as hl
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
from healthd.model import Config, Virtual
from healthd.overrides import NO_OVERRIDES, ByService
from healthd.reconcile import (
    Prepared,
    desired_service,
    desired_table,
    plan,
    plan_service,
    sort_ops,
)
from healthd.topology import Topology


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
        self._prepared: Mapping[ServiceKey, Prepared] = {}

    def index(self, topology: Topology) -> None:
        """Plan from now on for `topology`'s services, each prepared once."""
        self.virtuals = dict(topology.virtuals)
        self._prepared = topology.prepared

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
        health: Mapping[hl.CheckKey, hl.Health],
        forced: AbstractSet[hl.CheckKey],
        *,
        owned: AbstractSet[ServiceKey],
        starting: bool,
        overrides: ByService | None = None,
    ) -> list[Op]:
        """Return the plan for the whole table, against the record (fresh from a dump)."""
        actual = Table(self.services)
        desired = desired_table(
            config,
            health,
            forced,
            actual=actual,
            starting=starting,
            prepared=self._prepared,
            overrides=overrides,
        )
        return plan(desired, actual, owned=owned)

    def plan_dirty(
        self,
        dirty: AbstractSet[ServiceKey],
        config: Config,
        health: Mapping[hl.CheckKey, hl.Health],
        forced: AbstractSet[hl.CheckKey],
        overrides: ByService | None = None,
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
                overrides=overrides.get(key, NO_OVERRIDES) if overrides else NO_OVERRIDES,
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
