"""What one configuration means to the engine, worked out once: a Topology.

Every (virtual, real) pair's health key, the pairs that share one key (one check for all),
each virtual's service with its prepared desired part (service settings, dest keys and
weights, fallback) and the set of services healthd owns. The engine makes a Topology at
start and at each reload and everything else reads it: the initial health, the health
book's slots, the kernel planner and the maintenance rules never turn the Config into keys
again. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from healthd import health as hl
from healthd import maintenance
from healthd.ipvs.types import ServiceKey, Table
from healthd.model import Config, IPAddress, Real, Virtual
from healthd.reconcile import Prepared, owned_keys, prepare, service_key

Member = tuple[Virtual, Real]


@dataclass(frozen=True, slots=True)
class Topology:
    """One configuration's check groups, prepared services and owned set."""

    config: Config
    groups: Mapping[hl.CheckKey, list[Member]]  # members sharing one health entry, file order
    virtuals: Mapping[ServiceKey, Virtual]  # each service's virtual, config order
    prepared: Mapping[ServiceKey, Prepared]  # each service's desired part, from the config alone
    owned: frozenset[ServiceKey]  # the services this configuration may change

    @classmethod
    def of(cls, config: Config) -> Topology:
        """Work out the topology of `config` (one check key per (virtual, real) pair)."""
        groups: dict[hl.CheckKey, list[Member]] = {}
        prepared: dict[ServiceKey, Prepared] = {}
        virtuals: dict[ServiceKey, Virtual] = {}
        for virtual in config.virtuals:
            keys = [hl.check_key(virtual, real) for real in virtual.reals]
            for key, real in zip(keys, virtual.reals, strict=True):
                groups.setdefault(key, []).append((virtual, real))
            svc = service_key(virtual)
            virtuals[svc] = virtual
            prepared[svc] = prepare(virtual, keys)
        return cls(config, groups, virtuals, prepared, owned_keys(config))

    def keys_of(self, virtual: Virtual) -> tuple[hl.CheckKey, ...]:
        """Return the health key of each real of `virtual`, in virtual.reals order."""
        return self.prepared[service_key(virtual)].keys

    def initial_health(self, actual: Table, *, now: float = 0.0) -> dict[hl.CheckKey, hl.Health]:
        """Return the starting health of every key, read from the kernel table.

        A real is up if it is in its virtual's service with weight > 0 (ldirectord ld_start),
        so a restart drops no traffic; a key shared by several virtuals is up if any of
        them carries it.
        """
        result: dict[hl.CheckKey, hl.Health] = {}
        for svc, prep in self.prepared.items():
            entry = actual.services.get(svc)
            for key, dest in zip(prep.keys, prep.dests, strict=True):
                kernel = entry.dests.get(dest.key) if entry is not None else None
                up = kernel is not None and kernel.weight > 0
                if up or key not in result:
                    result[key] = hl.initial(up, now=now)
        return result

    def addresses(self) -> set[IPAddress]:
        """Return the address of every real."""
        return {real.address for members in self.groups.values() for _, real in members}

    def forced_down(
        self, names: Iterable[str], hostnames: Mapping[IPAddress, str] | None = None
    ) -> set[hl.CheckKey]:
        """Return the keys of every real that a maintenancedir name holds down."""
        present = set(names)
        if not present:
            return set()
        hostnames = hostnames or {}
        return {
            key
            for key, members in self.groups.items()
            for _, real in members
            if present.intersection(maintenance.names_for(real, hostnames.get(real.address)))
        }
