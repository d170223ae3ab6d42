"""The status view: each virtual's reals as plain data, for `healthd status` and SIGUSR1.

Reads the health book and the kernel record; renders, decides nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from checks.base import Result
from healthd import health as hl
from healthd import probes
from healthd.book import HealthBook
from healthd.ipvs.types import Table
from healthd.model import Virtual
from healthd.reconcile import key_up, real_dest, service_key


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
    keys: Sequence[hl.CheckKey],
    book: HealthBook,
    table: Table,
    fallback_active: bool,
) -> dict[str, object]:
    """Return one virtual's status: each real's health, failures, last result, kernel weight.

    `keys` are the reals' health keys (Topology.keys_of), in virtual.reals order.
    """
    entry = table.services.get(service_key(virtual))
    reals = []
    for real, key in zip(virtual.reals, keys, strict=True):
        slot = book.by_key.get(key)
        health = slot.health if slot is not None else None
        dest = entry.dests.get(real_dest(virtual, real).key) if entry is not None else None
        reals.append(
            {
                "real": real.endpoint,
                "check": probes.describe(virtual),
                "up": key_up(virtual, key, book, book.forced),
                "maintenance": key in book.forced,
                "failures": health.failures if health is not None else 0,
                # checks healthd itself could not run (local_error): not the real's failures
                "local_errors": health.local_errors if health is not None else 0,
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
