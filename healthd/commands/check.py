"""`healthd check [VIRTUAL [REAL]]`: run the configured checks once, by hand, and print them.

Loads the config, runs each matching real's check once (a real shared by several virtuals
once), prints up/down, reason, detail and elapsed time. Never touches IPVS. Exit 0 when every
checked real is up, 1 when one is down, 2 when the config (or a VIRTUAL/REAL) is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from ipaddress import ip_address
from typing import Final

import yaml

import checks
from checks.base import Result
from healthd import config as cfg
from healthd import health as hl
from healthd import logs, maintenance, probes
from healthd.errors import ConfigErrors
from healthd.model import Config, Proto, Real, Virtual
from healthd.scheduler import run_once

EXIT_UP: Final = 0
EXIT_DOWN: Final = 1
EXIT_CONFIG: Final = 2

Row = dict[str, object]


class UsageError(ValueError):
    """A VIRTUAL or REAL argument that names nothing in the config."""


def _split_hostport(text: str) -> tuple[str, int | None]:
    """Split `[v6]:port`, `v4:port`, `[v6]`, `v6` or `v4` into (address, port or None)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, _port(text, rest[1:]) if rest.startswith(":") else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, _port(text, port)
    return text, None


def _port(text: str, port: str) -> int:
    if not port.isdigit():
        raise UsageError(f"not a port number in {text!r}: {port!r}")
    return int(port)


def match_virtual(spec: str, virtual: Virtual) -> bool:
    """Return whether VIRTUAL (`192.0.2.10:80`, `tcp/…`, `[2001:db8::1]:80`, `fwm/5`, `5`) fits."""
    proto, _, rest = spec.rpartition("/")
    if proto.rstrip("6") == "fwm" or (not proto and rest.isdigit()):
        return virtual.proto is Proto.FWM and str(virtual.fwmark) == rest
    if proto and proto != str(virtual.proto):
        return False
    host, port = _split_hostport(rest)
    if virtual.address is None or ip_address(host) != virtual.address:
        return False
    return port is None or port == virtual.port


def match_real(spec: str, real: Real) -> bool:
    """Return whether REAL (`198.51.100.5:80`, `[2001:db8::5]:80` or an address) fits."""
    host, port = _split_hostport(spec)
    return ip_address(host) == real.address and (port is None or port == real.port)


def select(config: Config, virtual: str | None, real: str | None) -> list[tuple[Virtual, Real]]:
    """Return the (virtual, real) pairs the arguments name; raise UsageError if none."""
    try:
        virtuals = [v for v in config.virtuals if virtual is None or match_virtual(virtual, v)]
        pairs = [(v, r) for v in virtuals for r in v.reals if real is None or match_real(real, r)]
    except UsageError:
        raise
    except ValueError as exc:  # ip_address() on something that is no address
        raise UsageError(f"not an address: {exc}") from exc
    if not virtuals:
        raise UsageError(f"no virtual service matches {virtual!r}")
    if not pairs:
        raise UsageError(f"no real server matches {real!r}" if real else "no real servers")
    return pairs


async def _check_key(
    virtual: Virtual, real: Real, sem: asyncio.Semaphore, forced: set[hl.CheckKey]
) -> Result | None:
    if hl.check_key(virtual, real) in forced:
        return Result.down("maintenance", "in maintenancedir")
    probe = probes.build(virtual, real, checks.load)
    if probe is None:
        return None  # checktype on/off: not checked
    async with sem:
        return await run_once(probe, logs.get_logger("healthd.check"))


async def run_checks(config: Config, pairs: Sequence[tuple[Virtual, Real]]) -> list[Row]:
    """Run each distinct check once, concurrently; return one row per (virtual, real)."""
    names = maintenance.scan(config.maintenancedir) if config.maintenancedir else set()
    forced = maintenance.forced_down(names, config)
    sem = asyncio.Semaphore(config.max_in_flight)
    tasks: dict[hl.CheckKey, asyncio.Task[Result | None]] = {}
    for virtual, real in pairs:
        key = hl.check_key(virtual, real)
        if key not in tasks:
            tasks[key] = asyncio.create_task(_check_key(virtual, real, sem, forced))
    await asyncio.gather(*tasks.values())
    return [_row(v, r, tasks[hl.check_key(v, r)].result()) for v, r in pairs]


def _row(virtual: Virtual, real: Real, result: Result | None) -> Row:
    check = probes.describe(virtual)
    if result is None:
        # checktype=on counts as up; off is never checked (ldirectord.md §7)
        up = check == "on"
        status, reason = ("up" if up else "unchecked"), f"checktype={check}"
        return _as_row(virtual, real, check, status, reason, "not checked", 0.0)
    return _as_row(
        virtual, real, check, str(result.status), result.reason, result.detail, result.elapsed
    )


def _as_row(
    virtual: Virtual,
    real: Real,
    check: str,
    status: str,
    reason: str,
    detail: str,
    elapsed: float,
) -> Row:
    return {
        "virtual": virtual.name,
        "real": real.endpoint,
        "check": check,
        "status": status,
        "reason": reason,
        "detail": detail,
        "elapsed_ms": round(elapsed * 1000, 1),
    }


def render_text(rows: Sequence[Row]) -> str:
    """Return one aligned line per row: virtual, real, check, status, reason, ms, detail."""
    cols = ("virtual", "real", "check", "status", "reason")
    widths = {c: max(len(str(r[c])) for r in rows) for c in cols}
    lines = []
    for row in rows:
        head = "  ".join(str(row[c]).ljust(widths[c]) for c in cols)
        line = f"{head}  {row['elapsed_ms']:>8} ms"
        lines.append(f"{line}  {row['detail']}" if row["detail"] else line)
    return "\n".join(lines) + "\n"


def _load(ns: argparse.Namespace) -> Config | int:
    """Return the config, or EXIT_CONFIG after printing why it cannot be used."""
    try:
        path = cfg.lookup(getattr(ns, "config_arg", None))
        return cfg.load(path)
    except ConfigErrors as errors:
        sys.stderr.write(cfg.format_errors(errors) + "\n")
        sys.stderr.write(f"healthd: {errors.summary()}\n")
    except cfg.ConfigNotFoundError as exc:
        sys.stderr.write(f"healthd: {exc}\n")
    return EXIT_CONFIG


def check(ns: argparse.Namespace) -> int:
    """Run the configured checks of the matching reals once and print the results."""
    # logs go to stderr (console format), so stdout carries only the results
    logs.configure(bool(getattr(ns, "debug", False)), None, json=False)
    config = _load(ns)
    if isinstance(config, int):
        return config
    try:
        pairs = select(config, getattr(ns, "virtual", None), getattr(ns, "real", None))
    except UsageError as exc:
        sys.stderr.write(f"healthd check: {exc}\n")
        return EXIT_CONFIG
    from healthd import privileges

    try:
        privileges.apply(config.command_user)  # commands run as the daemon would run them
    except privileges.PrivilegeError as exc:
        sys.stderr.write(f"healthd check: {exc}\n")
        return EXIT_CONFIG
    rows = asyncio.run(run_checks(config, pairs))
    fmt = getattr(ns, "format", "text")
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif fmt == "yaml":
        sys.stdout.write(yaml.safe_dump(rows, sort_keys=False))
    else:
        sys.stdout.write(render_text(rows))
    return EXIT_UP if all(r["status"] != "down" for r in rows) else EXIT_DOWN
