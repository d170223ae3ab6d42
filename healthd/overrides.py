"""Runtime overrides of single reals: drain, maintenance, a weight — set by `healthd ctl`.

An Override is data the reconciler reads next to health (healthd.reconcile `_entry`): it
never calls the kernel itself. Overrides are named by the virtual's and the real's ids
(`tcp/192.0.2.10:80`, `198.51.100.5:80`), so they outlive reloads, and the state file
(healthd.statefile) carries them across restarts, as HAProxy's server-state file does.

    mode      in the kernel                                        ends
    --------  ---------------------------------------------------  ------------------------
    maint     as a down real (weight 0 if quiescent, else absent)  `ready`
    drain     weight 0, whatever quiescent says, while connected   no active connection, or
                                                                   its deadline → drained
    drained   absent                                               `ready`
    weight N  an up real carries weight N instead of the config's  `ready`

Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from healthd.model import Config, Virtual

MAX_WEIGHT: Final = 65535  # ipvsadm's range
DRAIN_TIMEOUT: Final = 300.0  # seconds a drain waits for connections to end, by default


class Mode(enum.StrEnum):
    """What an operator asked of a real (None on an Override: only a weight)."""

    MAINT = "maint"
    DRAIN = "drain"
    DRAINED = "drained"


@dataclass(frozen=True, slots=True)
class Override:
    """One real's override: a mode and/or a weight, and when it was set (wall clock)."""

    virtual: str  # Virtual.name
    real: str  # Real.endpoint
    mode: Mode | None = None
    weight: int | None = None
    since: float = 0.0
    deadline: float | None = None  # drain: when it stops waiting for connections

    @property
    def key(self) -> tuple[str, str]:
        return (self.virtual, self.real)

    def as_dict(self) -> dict[str, object]:
        """Return the override as plain data (the state file's and the status view's form)."""
        return {
            "virtual": self.virtual,
            "real": self.real,
            "mode": None if self.mode is None else str(self.mode),
            "weight": self.weight,
            "since": self.since,
            "deadline": self.deadline,
        }


NO_OVERRIDES: Final[Mapping[int, Override]] = {}
# each service's overrides by the index of their real in virtual.reals (ServiceKey → ...)
ByService = Mapping[Any, Mapping[int, Override]]


class OverrideError(ValueError):
    """A malformed override (from the state file or a request)."""


def _number(data: Mapping[str, object], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OverrideError(f"{key} must be a number, not {value!r}")
    return float(value)


def from_dict(data: Mapping[str, object]) -> Override:
    """Return the Override that `as_dict` wrote; raise OverrideError when it is malformed."""
    virtual, real, mode = data.get("virtual"), data.get("real"), data.get("mode")
    if not isinstance(virtual, str) or not isinstance(real, str):
        raise OverrideError("an override needs a virtual and a real")
    if mode is not None and (not isinstance(mode, str) or mode not in Mode._value2member_map_):
        raise OverrideError(f"unknown mode {mode!r}")
    weight = data.get("weight")
    if weight is not None:
        weight = check_weight(weight)
    since = _number(data, "since") or 0.0
    return Override(virtual, real, Mode(mode) if mode else None, weight, since,
                    _number(data, "deadline"))  # fmt: skip


def check_weight(value: object) -> int:
    """Return value as a weight in 0..65535; raise OverrideError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WEIGHT:
        raise OverrideError(f"weight {value!r} out of range (expected 0 to {MAX_WEIGHT})")
    return value


class Overrides:
    """Every override, by (virtual, real) id, and each service's view for the reconciler.

    `by_service[service][i]` is the override of the i-th real of that service's virtual
    (virtual.reals order); `index(config)` rebuilds it, after every change and reload.
    """

    def __init__(self, entries: Iterable[Override] = ()) -> None:
        self.entries: dict[tuple[str, str], Override] = {o.key: o for o in entries}
        self.by_service: dict[Any, dict[int, Override]] = {}
        self.version = 0  # bumped on every change, so observers can tell

    def __iter__(self) -> Iterator[Override]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, virtual: str, real: str) -> Override | None:
        return self.entries.get((virtual, real))

    def put(self, override: Override) -> None:
        """Set one real's override (an override without mode or weight clears it)."""
        if override.mode is None and override.weight is None:
            self.entries.pop(override.key, None)
        else:
            self.entries[override.key] = override
        self.version += 1

    def index(self, config: Config, service_key: Callable[[Virtual], Hashable]) -> list[Override]:
        """Rebuild the per-service view for `config`; drop and return overrides it lacks.

        `service_key` is the planner's (healthd.reconcile.service_key), passed in: the
        planner reads this module's types, so this module does not import it back.
        """

        found: dict[tuple[str, str], Override] = {}
        self.by_service = {}
        for virtual in config.virtuals:
            for i, real in enumerate(virtual.reals):
                override = self.entries.get((virtual.name, real.endpoint))
                if override is not None:
                    self.by_service.setdefault(service_key(virtual), {})[i] = override
                    found[override.key] = override
        gone = [o for k, o in self.entries.items() if k not in found]
        if gone:
            self.entries = found
            self.version += 1
        return gone


def drained(override: Override) -> Override:
    """Return a drain override once its connections are gone (or its deadline passed)."""
    return dataclasses.replace(override, mode=Mode.DRAINED, deadline=None)


def annotate(views: Iterable[dict[str, object]], overrides: Overrides) -> None:
    """Add each real's override to a status view (healthd.status_view `virtual_view` dicts)."""
    for view in views:
        reals = view.get("reals")
        for row in reals if isinstance(reals, list) else ():
            override = overrides.get(str(view.get("virtual")), str(row.get("real")))
            row["admin"] = None if override is None or override.mode is None else str(override.mode)
            row["weight_override"] = None if override is None else override.weight
            row["draining"] = override is not None and override.mode is Mode.DRAIN
