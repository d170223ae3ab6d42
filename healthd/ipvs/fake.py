"""FakeDriver: an in-memory IPVS table that enforces what the kernel enforces.

Used by tests and by dry runs. It shares value checks and the errno policy with the
NetlinkDriver (healthd.ipvs.driver), so callers cannot tell the two apart; it touches no
kernel and no file.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from healthd.ipvs.driver import apply_idempotent, error, validate
from healthd.ipvs.syncd_wire import SyncDaemon
from healthd.ipvs.types import (
    AddDest,
    AddService,
    Counters,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    Op,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)

# Schedulers of a stock Debian kernel (ip_vs_*.ko) plus "none", which the kernel takes too.
KNOWN_SCHEDULERS: Final = frozenset(
    {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"}
    | {"twos", "none"}
)


def _service_counters(dests: Iterable[Counters]) -> Counters:
    """Return a service's counters: its destinations' totals, no connection states."""
    rows = list(dests)
    return Counters(
        conns=sum(c.conns for c in rows),
        inpkts=sum(c.inpkts for c in rows),
        outpkts=sum(c.outpkts for c in rows),
        inbytes=sum(c.inbytes for c in rows),
        outbytes=sum(c.outbytes for c in rows),
    )


@dataclass
class _Entry:
    service: Service
    dests: dict[DestKey, Dest] = field(default_factory=dict)


class FakeDriver:
    """In-memory kernel table with the kernel's invariants and a journal of applied ops."""

    def __init__(
        self, table: Table | None = None, *, schedulers: Iterable[str] = KNOWN_SCHEDULERS
    ) -> None:
        self.journal: list[Op] = []
        self.schedulers = frozenset(schedulers)
        self.closed = False
        self.syncd: dict[str, SyncDaemon] = {}  # role -> the sync daemon running
        self._services: dict[ServiceKey, _Entry] = {}
        self._failures: list[int] = []
        self._dump_failures: list[int] = []
        self._counters: dict[tuple[ServiceKey, DestKey], Counters] = {}
        for key, entry in (table.services if table is not None else {}).items():
            self._services[key] = _Entry(entry.service, dict(entry.dests))

    def fail_next(self, err: int, count: int = 1) -> None:
        """Make the next `count` applied ops fail with kernel errno `err` (for tests)."""
        self._failures.extend([err] * count)

    def fail_dumps(self, err: int, count: int = 1) -> None:
        """Make the next `count` dumps fail with `err` (ENOBUFS: the kernel's answers to a
        large dump overran the socket's buffer; the netlink driver then reconnects)."""
        self._dump_failures.extend([err] * count)

    def set_counters(self, service: ServiceKey, dest: DestKey, counters: Counters) -> None:
        """Make the dump report these traffic counters for a destination (for tests).

        As in the kernel, they go with the destination: deleting it (or its service) resets
        them. The service's own counters are the sums of its destinations'.
        """
        self._counters[service, dest] = counters

    async def dump(self) -> Table:
        """Return a snapshot of the table, in insertion order, with the counters set."""
        self._check_open()
        if self._dump_failures:
            raise error(None, self._dump_failures.pop(0))
        services = {}
        for key, e in self._services.items():
            dest_counters = {k: self._counters.get((key, k), Counters()) for k in e.dests}
            services[key] = ServiceEntry(
                service=e.service,
                dests=dict(e.dests),
                counters=_service_counters(dest_counters.values()),
                dest_counters=dest_counters,
            )
        return Table(services)

    async def apply(self, op: Op) -> None:
        """Apply one op with the shared errno policy and record it in the journal."""
        self._check_open()
        if self._failures:
            raise error(op, self._failures.pop(0))
        await apply_idempotent(self.apply_raw, op)
        self.journal.append(op)

    async def aclose(self) -> None:
        """Mark the driver closed; later calls fail like a closed netlink socket."""
        self.closed = True

    async def apply_raw(self, op: Op) -> None:
        """Apply op exactly as the kernel would, raising its errno (no idempotence)."""
        validate(op)
        match op:
            case AddService(service=s):
                self._add_service(op, s)
            case EditService(service=s):
                self._entry(op, s.key)
                self._check_scheduler(op, s)
                self._services[s.key].service = s
            case DelService(key=k):
                self._entry(op, k)
                del self._services[k]
                self._counters = {sd: c for sd, c in self._counters.items() if sd[0] != k}
            case AddDest(service=k, dest=d):
                dests = self._entry(op, k).dests
                if d.key in dests:
                    raise error(op, errno.EEXIST)
                dests[d.key] = d
            case EditDest(service=k, dest=d):
                self._dest_present(op, k, d.key)
                self._services[k].dests[d.key] = d
            case DelDest(service=k, key=dk):
                self._dest_present(op, k, dk)
                del self._services[k].dests[dk]
                self._counters.pop((k, dk), None)

    # the connection sync daemon: one per role, as in the kernel
    async def daemons(self) -> list[SyncDaemon]:
        """Return the sync daemons "running"."""
        self._check_open()
        return sorted(self.syncd.values())

    async def start_daemon(self, daemon: SyncDaemon) -> None:
        """Start one; EEXIST if that role runs (or the next failure set by fail_next)."""
        self._check_open()
        if self._failures:
            raise error(None, self._failures.pop(0))
        if daemon.role in self.syncd:
            raise error(None, errno.EEXIST)
        self.syncd[daemon.role] = daemon

    async def stop_daemon(self, role: str) -> None:
        """Stop the daemon of `role`; ESRCH if none runs."""
        self._check_open()
        if self.syncd.pop(role, None) is None:
            raise error(None, errno.ESRCH)

    def _check_open(self) -> None:
        if self.closed:
            raise error(None, errno.EBADF, "the IPVS driver is closed")

    def _check_scheduler(self, op: Op, s: Service) -> None:
        # kernel: ip_vs_scheduler_get() fails -> ENOENT, as when the module is missing
        if s.scheduler not in self.schedulers:
            raise error(op, errno.ENOENT)

    def _add_service(self, op: Op, s: Service) -> None:
        if s.key in self._services:
            raise error(op, errno.EEXIST)
        self._check_scheduler(op, s)
        self._services[s.key] = _Entry(s)

    def _entry(self, op: Op, key: ServiceKey) -> _Entry:
        # kernel: every command but NEW_SERVICE needs the service (ESRCH)
        entry = self._services.get(key)
        if entry is None:
            raise error(op, errno.ESRCH)
        return entry

    def _dest_present(self, op: Op, key: ServiceKey, dkey: DestKey) -> None:
        if dkey not in self._entry(op, key).dests:
            raise error(op, errno.ENOENT)
