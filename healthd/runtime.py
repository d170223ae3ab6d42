"""Runtime control: `healthd ctl drain|ready|maint|weight` requests, and drains to their end.

A plugin of the daemon. It answers the control socket's `ctl` requests (root only; never the
HTTP port): it checks the request against the running configuration, writes the state file
first (a request that cannot be kept is refused and changes nothing), then sets the override
and marks the real's service for the next reconcile. While a drain is pending it reads the
kernel's active connection count of each draining real once a second; at 0, or at the
drain's deadline, the real is drained and leaves the table.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from healthd import logs, statefile
from healthd.overrides import DRAIN_TIMEOUT, Mode, Override, OverrideError, check_weight, drained
from healthd.plugins import Plugin
from healthd.reconcile import real_dest, service_key

if TYPE_CHECKING:
    from collections.abc import Iterable

    from healthd.ipvs.driver import IPVSDriver
    from healthd.ipvs.types import ServiceKey
    from healthd.model import Config, Real, Virtual
    from healthd.overrides import Overrides

log = logs.get_logger("healthd.runtime")

DRAIN_POLL = 1.0  # seconds between connection counts while a drain is pending
OPS = ("drain", "ready", "maint", "weight")


class Controlled(Protocol):
    """What runtime control needs of the engine."""

    overrides: Overrides

    @property
    def config(self) -> Config: ...

    @property
    def driver(self) -> IPVSDriver: ...

    def touch(self, services: Iterable[ServiceKey]) -> None: ...


class Refused(Exception):
    """A request that names nothing, or asks for something out of range."""


class Runtime(Plugin):
    """Serves ctl requests and watches drains; owns the state file."""

    def __init__(
        self, path: str, *, now: Callable[[], float] = time.time, poll: float = DRAIN_POLL
    ) -> None:
        self.path = path
        self._now = now
        self._poll = poll
        self._engine: Controlled | None = None
        self._wake = asyncio.Event()

    def attach(self, engine: Controlled) -> None:
        """Bind to the engine and give it the overrides of the state file (before it runs)."""
        self._engine = engine
        try:
            loaded = statefile.load(self.path)
        except statefile.StateFileError as exc:
            log.error(logs.STATE_UNREADABLE, path=self.path, detail=str(exc))  # noqa: TRY400
            loaded = []
        for override in loaded:
            engine.overrides.put(override)
        self._saved = engine.overrides.version

    def reconfigure(self, config: Config) -> None:
        """After a reload: the engine dropped the overrides of reals that are gone; keep that."""
        engine = self._require()
        if engine.overrides.version != self._saved:
            log.info(logs.OVERRIDE_DROPPED, path=self.path)
            self._save()

    # --- requests -------------------------------------------------------------------

    async def handle(self, request: Mapping[str, object]) -> dict[str, object]:
        """Answer one ctl request: {"ok": message} or {"error": one line}."""
        try:
            message = self._apply(request)
        except Refused as exc:
            return {"error": str(exc)}
        except statefile.StateFileError as exc:
            return {"error": f"{exc}; nothing changed"}
        return {"ok": message}

    def _apply(self, request: Mapping[str, object]) -> str:
        engine = self._require()
        op = request.get("op")
        if op not in OPS:
            raise Refused(f"unknown operation {op!r} (expected {', '.join(OPS)})")
        virtual, real = self._find(engine.config, request.get("virtual"), request.get("real"))
        old = engine.overrides.get(virtual.name, real.endpoint)
        new = self._override(str(op), virtual, real, old, request.get("value"))
        previous = list(engine.overrides)
        engine.overrides.put(new)
        try:
            self._save()
        except statefile.StateFileError:
            engine.overrides.entries = {o.key: o for o in previous}
            raise
        engine.overrides.index(engine.config, service_key)
        engine.touch([service_key(virtual)])
        self._wake.set()
        log.info(logs.OVERRIDE_SET, virtual=virtual.name, real=real.endpoint, op=op,
                 weight=new.weight, mode=None if new.mode is None else str(new.mode))  # fmt: skip
        return f"{op} {virtual.name} {real.endpoint}: {_describe(new)}"

    def _override(
        self, op: str, virtual: Virtual, real: Real, old: Override | None, value: object
    ) -> Override:
        now = self._now()
        base = old or Override(virtual.name, real.endpoint, since=now)
        if op == "ready":
            return Override(virtual.name, real.endpoint)
        if op == "weight":
            if value is None:
                raise Refused("weight needs a value N (0 to 65535)")
            try:
                weight = check_weight(_integer(value, "weight"))
            except OverrideError as exc:
                raise Refused(str(exc)) from None
            return dataclasses.replace(base, weight=weight)
        if op == "maint":
            return dataclasses.replace(base, mode=Mode.MAINT, since=now, deadline=None)
        timeout = DRAIN_TIMEOUT if value is None else _integer(value, "drain timeout")
        if timeout <= 0:
            raise Refused(f"drain timeout {timeout} out of range (expected seconds > 0)")
        return dataclasses.replace(base, mode=Mode.DRAIN, since=now, deadline=now + timeout)

    def _find(self, config: Config, virtual: object, real: object) -> tuple[Virtual, Real]:
        from healthd.commands.check import UsageError, select

        if not isinstance(virtual, str) or not isinstance(real, str):
            raise Refused("a request names a VIRTUAL and a REAL")
        try:
            pairs = select(config, virtual, real)
        except UsageError as exc:
            raise Refused(str(exc)) from None
        if len(pairs) > 1:
            names = ", ".join(f"{v.name} {r.endpoint}" for v, r in pairs)
            raise Refused(f"{virtual} {real} names {len(pairs)} reals ({names}); be precise")
        return pairs[0]

    def _save(self) -> None:
        engine = self._require()
        statefile.save(self.path, engine.overrides)
        self._saved = engine.overrides.version

    def _require(self) -> Controlled:
        if self._engine is None:
            raise RuntimeError("Runtime.attach() was not called")
        return self._engine

    # --- drains ---------------------------------------------------------------------

    async def run(self) -> None:
        """Watch pending drains; end each at no active connection or at its deadline."""
        while True:
            engine = self._require()
            if not any(o.mode is Mode.DRAIN for o in engine.overrides):
                self._wake.clear()
                await self._wake.wait()
                continue
            await asyncio.sleep(self._poll)
            await self._check_drains(engine)

    async def _check_drains(self, engine: Controlled) -> None:
        from healthd.errors import DriverError

        try:
            table = await engine.driver.dump()
        except DriverError as exc:
            log.warning(logs.IPVS_DUMP_FAILED, errno=exc.errno, detail=exc.message)
            return
        done: list[tuple[Virtual, Override, int]] = []
        now = self._now()
        for virtual in engine.config.virtuals:
            entry = table.services.get(service_key(virtual))
            for real in virtual.reals:
                override = engine.overrides.get(virtual.name, real.endpoint)
                if override is None or override.mode is not Mode.DRAIN:
                    continue
                key = real_dest(virtual, real).key
                counters = entry.dest_counters.get(key) if entry is not None else None
                active = counters.active_conns if counters is not None else 0
                if active == 0 or (override.deadline is not None and now >= override.deadline):
                    done.append((virtual, override, active))
        for virtual, override, active in done:
            engine.overrides.put(drained(override))
            log.info(logs.OVERRIDE_DRAINED, virtual=virtual.name, real=override.real,
                     active=active, timed_out=active > 0)  # fmt: skip
        if done:
            engine.overrides.index(engine.config, service_key)
            try:
                self._save()
            except statefile.StateFileError as exc:
                log.error(logs.STATE_WRITE_FAILED, path=self.path, detail=str(exc))  # noqa: TRY400
            engine.touch({service_key(v) for v, _, _ in done})


def _integer(value: object, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise Refused(f"{what} {value!r} is not a whole number")


def _describe(override: Override) -> str:
    parts = []
    if override.mode is not None:
        parts.append(str(override.mode))
    if override.weight is not None:
        parts.append(f"weight {override.weight}")
    return ", ".join(parts) or "ready (as configured and checked)"
