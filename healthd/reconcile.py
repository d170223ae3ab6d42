"""Pure reconciliation: what the IPVS table should hold, and the ops that get it there.

`desired_table` is the only translator from the config model's words (virtual, real, gate)
to the kernel's (service, dest, route); `plan` diffs two tables. No I/O here: the engine
dumps the kernel, calls these, and hands the ops to a driver.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from healthd.health import CheckKey, Health, check_key, initial, pairs
from healthd.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    IPAddress,
    Method,
    Op,
    Protocol,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)
from healthd.model import CheckType, Config, Forward, Proto, Real, Virtual
from healthd.overrides import NO_OVERRIDES, ByService, Mode, Override

METHODS: dict[Forward, Method] = {
    Forward.GATE: Method.ROUTE,
    Forward.MASQ: Method.MASQ,
    Forward.IPIP: Method.TUNNEL,
}

# --- translating the model --------------------------------------------------------------


def service_key(virtual: Virtual) -> ServiceKey:
    """Return the kernel identity of a virtual service."""
    if virtual.proto is Proto.FWM:
        return ServiceKey(Protocol.FWM, None, 0, virtual.fwmark, virtual.family)
    return ServiceKey(Protocol(virtual.proto.value), virtual.address, virtual.port)


def service_of(virtual: Virtual) -> Service:
    """Return the kernel settings of a virtual service (persistence and ops only when set)."""
    # Service canonicalises itself (netmask only when persistent, flag names per scheduler)
    return Service(
        key=service_key(virtual),
        scheduler=virtual.scheduler,
        persistent=virtual.persistent,
        netmask=virtual.netmask,
        # ldirectord: -o is emitted only for udp virtuals
        one_packet=virtual.ops and virtual.proto is Proto.UDP,
        # ldirectord passes schedflags to ipvsadm -b as one comma-separated word
        sched_flags=frozenset(f for word in virtual.schedflags for f in word.split(",") if f),
    )


def dest_port(virtual: Virtual, port: int, forward: Forward) -> int:
    """Return the port the kernel holds for a destination of this virtual."""
    if virtual.proto is Proto.FWM:
        return port  # fwmark services: the real's port (0 unless given)
    if forward is not Forward.MASQ:
        # ipvsadm: direct routing and tunnelling cannot change the port, so a gate or ipip
        # destination of an address service always takes the service port
        return virtual.port
    return port or virtual.port  # masq with the port omitted: the service port


def dest_key(virtual: Virtual, address: IPAddress, port: int, forward: Forward) -> DestKey:
    """Return the kernel identity of a destination of this virtual."""
    return DestKey(address, dest_port(virtual, port, forward))


def real_dest(virtual: Virtual, real: Real, *, weight: int | None = None) -> Dest:
    """Return the dest for a real at its configured weight (or `weight`)."""
    return Dest(
        key=dest_key(virtual, real.address, real.port, real.forward),
        weight=real.weight if weight is None else weight,
        method=METHODS[real.forward],
        upper=real.upper,
        lower=real.lower,
    )


def fallback_dest(virtual: Virtual) -> Dest | None:
    """Return the fallback's dest: always weight 1, no thresholds; None without a fallback."""
    fb = virtual.fallback
    if fb is None:
        return None
    return Dest(dest_key(virtual, fb.address, fb.port, fb.forward), 1, METHODS[fb.forward])


# --- the desired table ------------------------------------------------------------------


def is_up(
    virtual: Virtual, real: Real, health: Mapping[CheckKey, Health], forced: AbstractSet[CheckKey]
) -> bool:
    """Return whether a real may carry traffic now (maintenance beats every checktype)."""
    return key_up(virtual, check_key(virtual, real), health, forced)


def key_up(
    virtual: Virtual,
    key: CheckKey,
    health: Mapping[CheckKey, Health],
    forced: AbstractSet[CheckKey],
) -> bool:
    if key in forced:
        return False
    if virtual.check.checktype is CheckType.ON:
        return True
    entry = health.get(key)
    return entry is not None and entry.is_up


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a virtual's desired service derives from the config alone, computed once.

    The engine prepares each virtual at start and reload and passes it on every tick, so
    a tick costs the reals' health lookups, not the translation of the model.
    """

    service: Service
    keys: tuple[CheckKey, ...]  # each real's health key, in virtual.reals order
    dests: tuple[Dest, ...]  # each real's dest at its configured weight, same order
    fallback: Dest | None


def prepare(virtual: Virtual, keys: Sequence[CheckKey] | None = None) -> Prepared:
    """Return the config-only part of a virtual's desired service (`keys`: known health keys)."""
    if keys is None:
        keys = [check_key(virtual, real) for real in virtual.reals]
    dests = tuple(real_dest(virtual, real) for real in virtual.reals)
    return Prepared(service_of(virtual), tuple(keys), dests, fallback_dest(virtual))


def _overridden(
    prepared: Prepared,
    up: Sequence[bool],
    present: AbstractSet[DestKey],
    overrides: Mapping[int, Override],
) -> tuple[list[Dest], list[bool], list[Dest], set[int]]:
    """Apply the operator's overrides: (dests, up, held at weight 0, left to no rule)."""
    dests, up = list(prepared.dests), list(up)
    held: list[Dest] = []
    settled: set[int] = set()
    for i, override in overrides.items():
        dest = dests[i]
        if override.weight is not None:
            dests[i] = dataclasses.replace(dest, weight=override.weight)
        if override.mode is None:
            continue
        if override.mode is Mode.DRAIN and (up[i] or dest.key in present):
            held.append(dataclasses.replace(dest, weight=0))  # drain: kept, takes no new clients
        if override.mode is not Mode.MAINT:
            settled.add(i)  # drain and drained: neither quiescent nor readd applies
        up[i] = False
    return dests, up, held, settled


def _entry(
    virtual: Virtual,
    prepared: Prepared,
    up: Sequence[bool],
    present: AbstractSet[DestKey],
    *,
    readd: bool,
    overrides: Mapping[int, Override] = NO_OVERRIDES,
) -> ServiceEntry:
    # `up` follows virtual.reals: a list, as hashing Real values costs more than the rest
    wanted: Sequence[Dest] = prepared.dests
    held: list[Dest] = []
    settled: set[int] = set()
    if overrides:
        wanted, up, held, settled = _overridden(prepared, up, present, overrides)
    dests: dict[DestKey, Dest] = {}
    # up reals first, so when two reals map to one dest (gate reals on several ports) an up
    # one wins; then draining reals and quiescent down reals at weight 0 where they are kept
    for dest, is_on in zip(wanted, up, strict=True):
        if is_on:
            dests.setdefault(dest.key, dest)
    for dest in held:
        dests.setdefault(dest.key, dest)
    if virtual.quiescent:
        for i, (dest, is_on) in enumerate(zip(wanted, up, strict=True)):
            if i in settled:
                continue
            if not is_on and (readd or dest.key in present) and dest.key not in dests:
                dests[dest.key] = dataclasses.replace(dest, weight=0)
    fallback = prepared.fallback
    if fallback is not None and not any(d.weight > 0 for d in dests.values()):
        dests[fallback.key] = fallback  # the fallback stands in for a down real at its key
    return ServiceEntry(prepared.service, dests)


def desired_service(
    virtual: Virtual,
    health: Mapping[CheckKey, Health],
    forced_down: AbstractSet[CheckKey] = frozenset(),
    *,
    actual_entry: ServiceEntry | None,
    starting: bool = False,
    readdquiescent: bool = False,
    prepared: Prepared | None = None,
    overrides: Mapping[int, Override] = NO_OVERRIDES,
) -> ServiceEntry:
    """Return what IPVS should hold now for one virtual, given its service as the kernel has it.

    The per-service step of `desired_table`: the engine calls it for the virtuals whose
    reals changed, against its cached view of the kernel (`actual_entry`), with the
    virtual `prepare`d once. `overrides` holds the operator's overrides (healthd.overrides)
    by the index of their real in virtual.reals.
    """
    prepared = prepared or prepare(virtual)
    present = actual_entry.dests.keys() if actual_entry is not None else frozenset()
    up = [key_up(virtual, key, health, forced_down) for key in prepared.keys]
    readd = readdquiescent or starting
    return _entry(virtual, prepared, up, present, readd=readd, overrides=overrides)


def desired_table(
    config: Config,
    health: Mapping[CheckKey, Health],
    forced_down: AbstractSet[CheckKey] = frozenset(),
    *,
    actual: Table,
    starting: bool = False,
    prepared: Mapping[ServiceKey, Prepared] | None = None,
    overrides: ByService | None = None,
) -> Table:
    """Return what IPVS should hold now for the config's virtuals.

    Up reals at their weight; down reals at weight 0 when quiescent (kept only where they
    are in `actual`, unless readdquiescent or `starting`), absent otherwise; the fallback
    iff no real carries traffic. `starting` is the first reconcile after start or reload,
    where ldirectord leaves every quiescent down real in the table at weight 0.
    `prepared` holds each virtual's `prepare`d part by service (made here when absent),
    `overrides` the operator's overrides by service (see `desired_service`).
    """
    services: dict[ServiceKey, ServiceEntry] = {}
    for virtual in config.virtuals:
        key = service_key(virtual)
        services[key] = desired_service(
            virtual,
            health,
            forced_down,
            actual_entry=actual.services.get(key),
            starting=starting,
            readdquiescent=config.readdquiescent,
            prepared=prepared.get(key) if prepared is not None else None,
            overrides=overrides.get(key, NO_OVERRIDES) if overrides else NO_OVERRIDES,
        )
    return Table(services)


def initial_health(config: Config, actual: Table, *, now: float = 0.0) -> dict[CheckKey, Health]:
    """Return the starting health of every checked real, read from the kernel table.

    A real is up if it is in its virtual's service with weight > 0 (ldirectord ld_start),
    so a restart drops no traffic. A real shared by several virtuals is up if any of them
    carries it.
    """
    result: dict[CheckKey, Health] = {}
    for virtual, real in pairs(config):
        key = check_key(virtual, real)
        entry = actual.services.get(service_key(virtual))
        dest = entry.dests.get(real_dest(virtual, real).key) if entry is not None else None
        up = dest is not None and dest.weight > 0
        if up or key not in result:
            result[key] = initial(up, now=now)
    return result


# --- planning ---------------------------------------------------------------------------


def _service_order(key: ServiceKey) -> tuple[str, int, int, int, int]:
    # ServiceKey's own ordering raises TypeError between IPv4 and IPv6 addresses
    address = int(key.address) if key.address is not None else -1
    return (key.proto.value, key.family, address, key.port, key.fwmark)


def _dest_order(key: DestKey) -> tuple[int, int, int]:
    return (key.address.version, int(key.address), key.port)


def _dest_ops(svc: ServiceKey, want: ServiceEntry, have: ServiceEntry | None) -> list[Op]:
    """Return AddDest, EditDest and DelDest ops for one service, unordered."""
    current = have.dests if have is not None else {}
    ops: list[Op] = []
    for key, dest in want.dests.items():
        old = current.get(key)
        if old is None:
            ops.append(AddDest(svc, dest))
        elif old != dest:
            ops.append(EditDest(svc, dest))
    ops.extend(DelDest(svc, key) for key in current if key not in want.dests)
    return ops


def _phase(op: Op) -> int:
    # make before break: services first, then capacity in (adds, raised or kept weights),
    # then capacity out (weight 0, deletions), services last
    if isinstance(op, AddService):
        return 0
    if isinstance(op, EditService):
        return 1
    if isinstance(op, AddDest):
        return 2
    if isinstance(op, EditDest):
        return 3 if op.dest.weight > 0 else 4
    if isinstance(op, DelDest):
        return 5
    return 6


def _sort_key(op: Op) -> tuple[int, tuple[str, int, int, int, int], tuple[int, int, int]]:
    if isinstance(op, AddService | EditService):
        return (_phase(op), _service_order(op.service.key), (0, 0, 0))
    if isinstance(op, DelService):
        return (_phase(op), _service_order(op.key), (0, 0, 0))
    dest = op.key if isinstance(op, DelDest) else op.dest.key
    return (_phase(op), _service_order(op.service), _dest_order(dest))


def sort_ops(ops: Iterable[Op]) -> list[Op]:
    """Return ops in safe order: make before break, then by service and dest address."""
    return sorted(ops, key=_sort_key)


def plan_service(
    desired: ServiceEntry | None, actual: ServiceEntry | None, key: ServiceKey
) -> list[Op]:
    """Return the ops that turn one service as `actual` holds it into `desired`, in safe order.

    `desired` None deletes the service and its dests (the caller decides that it is owned).
    The per-service step of `plan`: planning services one by one and merging with
    `sort_ops` gives the full plan restricted to those services.
    """
    ops: list[Op] = []
    if desired is not None:
        if actual is None:
            ops.append(AddService(desired.service))
        elif actual.service != desired.service:
            ops.append(EditService(desired.service))
        ops.extend(_dest_ops(key, desired, actual))
    elif actual is not None:
        ops.extend(DelDest(key, dest) for dest in actual.dests)
        ops.append(DelService(key))
    return sort_ops(ops)


def plan(desired: Table, actual: Table, *, owned: AbstractSet[ServiceKey]) -> list[Op]:
    """Return the ops that turn `actual` into `desired` for owned services, in safe order.

    Desired services are always owned. Services neither desired nor owned are never
    touched; inside an owned service every dest not desired is deleted (ldirectord
    purge_untracked_service). A service whose settings differ is edited, never re-created.
    """
    ops: list[Op] = []
    for key, want in desired.services.items():
        ops.extend(plan_service(want, actual.services.get(key), key))
    for key, have in actual.services.items():
        if key in owned and key not in desired.services:
            ops.extend(plan_service(None, have, key))
    return sort_ops(ops)


def owned_keys(config: Config, created: Iterable[ServiceKey] = ()) -> frozenset[ServiceKey]:
    """Return the services healthd may change: the config's plus those it created."""
    return frozenset(service_key(v) for v in config.virtuals) | frozenset(created)
