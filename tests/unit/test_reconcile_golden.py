"""Golden reconcile cases: (virtuals, kernel table, health script) -> expected op lists.

Each tests/data/golden/reconcile/*.yaml holds a config snippet in ldirectord's words, the
kernel table as `healthd` prints it, and steps. The first reconcile is the start; each step
feeds check results (or maintenance names, or a new kernel table) and lists the ops the
plan must contain, in order, as their log strings. The ops run on a FakeDriver, and after
every step a second plan must be empty.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks.base import Result
from healthd.health import CheckKey, Health, check_groups, force, observe, release
from healthd.ipvs.driver import apply_all
from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.types import (
    Dest,
    DestKey,
    Method,
    Protocol,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)
from healthd.maintenance import forced_down
from healthd.model import (
    CheckSpec,
    CheckType,
    Config,
    Fallback,
    Forward,
    Proto,
    Real,
    Virtual,
)
from healthd.reconcile import desired_table, initial_health, owned_keys, plan

GOLDEN = Path(__file__).parent.parent / "data" / "golden" / "reconcile"
CASES = sorted(GOLDEN.glob("*.yaml"))

# --- the compact text forms -------------------------------------------------------------

_ENDPOINT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<v4>[0-9.]+))(?::(?P<port>\d+))?$")


def endpoint(text: str) -> tuple[Any, int]:
    m = _ENDPOINT.match(text)
    assert m, f"bad endpoint {text!r}"
    return ip_address(m["v6"] or m["v4"]), int(m["port"] or 0)


def service_key(text: str) -> ServiceKey:
    proto, _, rest = text.partition("/")
    if proto in ("fwm", "fwm6"):
        return ServiceKey(Protocol.FWM, None, 0, int(rest), 6 if proto == "fwm6" else 4)
    address, port = endpoint(rest)
    return ServiceKey(Protocol(proto), address, port)


def words(text: str) -> dict[str, str]:
    return dict(w.partition("=")[::2] for w in text.split())


def parse_table(text: str) -> Table:
    """Parse `tcp/192.0.2.10:80 sched=wrr` lines with indented `ip:port method w=N` dests."""
    services: dict[ServiceKey, tuple[Service, dict[DestKey, Dest]]] = {}
    current: ServiceKey | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        head, _, rest = line.strip().partition(" ")
        if not line[0].isspace():
            current, opts = service_key(head), words(rest)
            flags = frozenset(opts["flags"].split(",")) if "flags" in opts else frozenset()
            persistent = int(opts["persistent"]) if "persistent" in opts else None
            svc = Service(current, opts.get("sched", "wrr"), persistent, opts.get("netmask"))
            services[current] = (
                Service(svc.key, svc.scheduler, svc.persistent, svc.netmask, "ops" in opts, flags),
                {},
            )
            continue
        assert current is not None
        method, _, more = rest.partition(" ")
        opts = words(more)
        address, port = endpoint(head)
        dest = Dest(
            DestKey(address, port),
            int(opts.get("w", 1)),
            Method(method),
            int(opts.get("u", 0)),
            int(opts.get("l", 0)),
        )
        services[current][1][dest.key] = dest
    return Table({k: ServiceEntry(s, d) for k, (s, d) in services.items()})


def parse_real(text: str) -> Real:
    """Parse ldirectord's `ip:port gate|masq|ipip [weight] [l:N] [u:N]`."""
    parts = text.split()
    address, port = endpoint(parts[0])
    weight = next((int(p) for p in parts[2:] if p.isdigit()), 1)
    opts = {p[0]: int(p[2:]) for p in parts[2:] if p[:2] in ("l:", "u:")}
    return Real(
        address, port, Forward(parts[1]), weight, lower=opts.get("l", 0), upper=opts.get("u", 0)
    )


def parse_virtual(spec: dict[str, Any]) -> Virtual:
    key = service_key(spec["virtual"])
    fallback = None
    if "fallback" in spec:
        where, _, fwd = spec["fallback"].partition(" ")
        address, port = endpoint(where)
        fallback = Fallback(address, port, Forward(fwd or "gate"))
    return Virtual(
        proto=Proto(key.proto.value),
        address=key.address,
        port=key.port,
        fwmark=key.fwmark,
        family=key.family,
        scheduler=spec.get("scheduler", "wrr"),
        persistent=spec.get("persistent"),
        netmask=spec.get("netmask"),
        ops=spec.get("ops", False),
        schedflags=tuple(spec.get("schedflags", "").split()),
        reals=tuple(parse_real(r) for r in spec.get("reals", [])),
        check=CheckSpec(checktype=CheckType(spec.get("checktype", "negotiate"))),
        failurecount=spec.get("failurecount", 1),
        rise=spec.get("rise", 1),
        quiescent=spec.get("quiescent", False),
        fallback=fallback,
    )


def parse_config(case: dict[str, Any]) -> Config:
    return Config(
        path="golden.cf",
        virtuals=tuple(parse_virtual(v) for v in case["virtuals"]),
        readdquiescent=case.get("readdquiescent", False),
    )


# --- the runner -------------------------------------------------------------------------


@dataclass
class Run:
    config: Config
    driver: FakeDriver
    health: dict[CheckKey, Health] = field(default_factory=dict)
    forced: set[CheckKey] = field(default_factory=set)

    def reconcile(self, *, starting: bool = False) -> list[str]:
        return asyncio.run(self._reconcile(starting))

    async def _reconcile(self, starting: bool) -> list[str]:
        actual = await self.driver.dump()
        desired = desired_table(
            self.config, self.health, self.forced, actual=actual, starting=starting
        )
        owned = owned_keys(self.config)
        ops = plan(desired, actual, owned=owned)
        await apply_all(self.driver, ops)
        after = await self.driver.dump()
        again = desired_table(self.config, self.health, self.forced, actual=after)
        assert plan(again, after, owned=owned) == [], "a second plan must be empty"
        return [str(op) for op in ops]

    def feed(self, results: dict[str, str], now: float) -> None:
        groups = check_groups(self.config)
        for where, status in results.items():
            address, port = endpoint(where)
            result = Result.ok() if status == "up" else Result.down(status)
            for key in groups:
                if (key.address, key.port) == (address, port):
                    self.health[key], _ = observe(
                        self.health[key],
                        result,
                        failurecount=key.failurecount,
                        rise=key.rise,
                        now=now,
                    )

    def maintain(self, names: list[str], now: float) -> None:
        self.forced = forced_down(names, self.config)
        for key, health in list(self.health.items()):
            if key in self.forced:
                self.health[key], _ = force(health, "maintenance", now=now)
            else:
                self.health[key] = release(health)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    config = parse_config(case)
    kernel = parse_table(case.get("table", ""))
    run = Run(config, FakeDriver(kernel))
    run.health = initial_health(config, kernel)
    assert run.reconcile(starting=True) == case.get("start", []), "start"
    for i, step in enumerate(case.get("steps", []), start=1):
        if "kernel" in step:
            run.driver = FakeDriver(parse_table(step["kernel"]))
        if "maintenance" in step:
            run.maintain(step["maintenance"], float(i))
        run.feed(step.get("results", {}), float(i))
        assert run.reconcile() == step.get("expect", []), f"step {i}: {step.get('name', '')}"
    if "final" in case:
        assert asyncio.run(run.driver.dump()) == parse_table(case["final"]), "final table"


def test_golden_cases_exist() -> None:
    assert len(CASES) >= 10
