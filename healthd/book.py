"""The health book: one slot per health key, and which keys maintenance holds down.

A slot is one shared health entry (a check key, the (virtual, real) pairs that share it,
its probe, the services to mark when it changes). The book keeps the slots across reloads
(a kept key keeps its health, probe and id) and is the one place that knows the forced set:
hold() and let_go() change it and the slots' health together. As a Mapping it is each key's
health, which is what the pure reconciler reads. Pure bookkeeping: no I/O, no asyncio.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from healthd import health as hl
from healthd import probes
from healthd.ipvs.types import ServiceKey
from healthd.reconcile import service_key
from healthd.topology import Member, Topology


@dataclass(slots=True)
class Slot:
    """One health entry: a check key, the (virtual, real) pairs sharing it, its probe."""

    id: int  # the scheduler's key: cheap to hash on the per-result path
    key: hl.CheckKey
    members: list[Member]
    health: hl.Health
    probe: probes.Probe | None = None
    services: tuple[ServiceKey, ...] = ()  # the services its members are in, to mark dirty


class HealthBook(Mapping[hl.CheckKey, hl.Health]):
    """Every slot, by check key and by id, and the keys held down by maintenance."""

    def __init__(self) -> None:
        self.by_key: dict[hl.CheckKey, Slot] = {}
        self.by_id: dict[int, Slot] = {}
        self._forced: set[hl.CheckKey] = set()
        self._ids = itertools.count()

    def __getitem__(self, key: hl.CheckKey) -> hl.Health:
        return self.by_key[key].health

    def __iter__(self) -> Iterator[hl.CheckKey]:
        return iter(self.by_key)

    def __len__(self) -> int:
        return len(self.by_key)

    @property
    def forced(self) -> AbstractSet[hl.CheckKey]:
        """The keys maintenance holds down (read-only view)."""
        return self._forced

    def install(
        self, topology: Topology, fresh: Mapping[hl.CheckKey, hl.Health]
    ) -> tuple[int, int, int]:
        """Match the slots to `topology`; kept keys keep health and probe.

        Return how many keys were kept, added and gone.
        """
        old, slots = self.by_key, {}
        for key, members in topology.groups.items():
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
        self._forced &= slots.keys()
        return kept, len(slots) - kept, gone

    def is_held(self, slot_id: int) -> bool:
        """Return whether the slot with this id is held down by maintenance."""
        if not self._forced:
            return False
        slot = self.by_id.get(slot_id)
        return slot is not None and slot.key in self._forced

    def hold(self, key: hl.CheckKey, reason: str, now: float) -> hl.Transition | None:
        """Hold a key down (maintenance); return the transition if it was up."""
        slot = self.by_key[key]
        slot.health, transition = hl.force(slot.health, reason, now=now)
        self._forced.add(key)
        return transition

    def let_go(self, key: hl.CheckKey) -> None:
        """Release a held key; it stays down until its checks bring it back."""
        slot = self.by_key[key]
        slot.health = hl.release(slot.health)
        self._forced.discard(key)
