"""`healthd ipvs dump`: print the kernel's IPVS table as the driver reads it.

Formats: ipvsadm (line for line `ipvsadm -Sn`, fit for `ipvsadm -R`), json and yaml (every
field, counters included). Read-only; errors are one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from healthd.errors import DriverError
from healthd.ipvs.format import to_data, to_ipvsadm
from healthd.ipvs.types import Table

EXIT_OK = 0
EXIT_FAIL = 1


async def _read_table() -> Table:
    from healthd.ipvs.netlink import NetlinkDriver  # pyroute2 loads only when needed

    driver = NetlinkDriver()
    try:
        return await driver.dump()
    finally:
        await driver.aclose()


def render(table: Table, fmt: str) -> str:
    """Return the table in the named format (ipvsadm, json or yaml)."""
    if fmt == "ipvsadm":
        return to_ipvsadm(table)
    data = to_data(table)
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    import yaml

    text: str = yaml.safe_dump(data, sort_keys=False)
    return text


def ipvs(ns: argparse.Namespace) -> int:
    """Run `healthd ipvs ACTION`; only `dump` exists."""
    if ns.action != "dump":  # pragma: no cover - argparse restricts the choices
        sys.stderr.write(f"healthd: unknown ipvs action {ns.action!r}\n")
        return EXIT_FAIL
    try:
        table = asyncio.run(_read_table())
    except DriverError as exc:
        sys.stderr.write(f"healthd: {exc}\n")
        return EXIT_FAIL
    sys.stdout.write(render(table, ns.format))
    return EXIT_OK
