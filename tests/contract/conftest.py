"""The driver contract harness: one suite over FakeDriver and, in the VM, NetlinkDriver.

Each netlink test gets a fresh network namespace (IPVS tables are per namespace), deleted
afterwards. There the table is also read back through independent witnesses: `ipvsadm -Sn`,
`ipvsadm -Ln --thresholds` and `healthd ipvs dump`, all run inside the namespace.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from healthd.ipvs.driver import IPVSDriver
from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.format import ipvsadm_order, to_data, to_ipvsadm
from healthd.ipvs.types import Table

KERNEL = (
    os.environ.get("HEALTHD_KERNEL") == "1"
    and os.geteuid() == 0
    and os.path.exists("/proc/net/ip_vs")
)
NO_KERNEL = "needs root, ip_vs and HEALTHD_KERNEL=1"
HEALTHD = str(Path(sys.executable).with_name("healthd"))
_names = itertools.count()


async def run(*argv: str, check: bool = True) -> tuple[int, str, str]:
    """Run a command to completion; return its status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    rc = proc.returncode if proc.returncode is not None else -1
    if check and rc != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({rc}): {err.decode().strip()}")
    return rc, out.decode(), err.decode()


def _threshold_rows(text: str) -> list[tuple[str, int, int]]:
    """Return (real, upper, lower) for each `  -> ` line of `ipvsadm -Ln --thresholds`."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if line.startswith("  -> ") and fields[1] != "RemoteAddress:Port":
            rows.append((fields[1], int(fields[2]), int(fields[3])))
    return rows


def expected_threshold_rows(table: Table) -> list[tuple[str, int, int]]:
    """Return the threshold rows ipvsadm should list for table, in its order."""
    return [(str(d.key), d.upper, d.lower) for _, dests in ipvsadm_order(table) for d in dests]


@dataclass
class Harness:
    """A driver under contract, and (for the kernel) the namespace it works in."""

    kind: str
    driver: IPVSDriver
    netns: str | None = None

    async def in_netns(self, *argv: str, check: bool = True) -> tuple[int, str, str]:
        assert self.netns is not None
        return await run("ip", "netns", "exec", self.netns, *argv, check=check)

    async def verify(self, *, cli: bool = False) -> Table:
        """Dump the table; in the kernel, check it against ipvsadm (and, if asked, the CLI).

        The CLI check starts a Python process, which is slow under emulation; the tests
        that cover every kind of entry ask for it.
        """
        table = await self.driver.dump()
        if self.netns is None:
            return table
        _, saved, _ = await self.in_netns("ipvsadm", "-Sn")
        assert to_ipvsadm(table) == saved
        _, listed, _ = await self.in_netns("ipvsadm", "-Ln", "--thresholds")
        assert _threshold_rows(listed) == expected_threshold_rows(table)
        if not cli:
            return table
        _, text, _ = await self.in_netns(HEALTHD, "ipvs", "dump", "--format", "ipvsadm")
        assert text == saved  # byte for byte
        _, cli_json, _ = await self.in_netns(HEALTHD, "ipvs", "dump", "--format", "json")
        assert json.loads(cli_json) == to_data(table)
        return table


async def _netlink_harness() -> AsyncIterator[Harness]:
    from healthd.ipvs.netlink import NetlinkDriver

    name = f"healthd-ct-{os.getpid()}-{next(_names)}"
    await run("ip", "netns", "add", name)
    # kernel: an IPv4 destination must be unicast by inet_addr_type(), which answers
    # "broadcast" while the namespace has no local routing table: bring lo up first
    await run("ip", "-n", name, "link", "set", "lo", "up")
    driver = NetlinkDriver(netns=name)
    try:
        yield Harness("netlink", driver, name)
    finally:
        await driver.aclose()
        await run("ip", "netns", "del", name)


@pytest.fixture(
    params=[
        pytest.param("fake"),
        pytest.param("netlink", marks=pytest.mark.kernel),
    ]
)
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """The driver under contract: FakeDriver, or NetlinkDriver in a fresh namespace."""
    if request.param == "fake":
        driver = FakeDriver()
        yield Harness("fake", driver)
        await driver.aclose()
        return
    require_kernel()
    async for harness in _netlink_harness():
        yield harness


def require_kernel() -> None:
    """Skip a kernel test where there is no kernel to run it on; fail where one was promised.

    With HEALTHD_KERNEL=1 (the test VM sets it) a missing ip_vs or root is a broken harness,
    not a reason to skip: the kernel suite must never pass by skipping its kernel half.
    """
    if KERNEL:
        return
    if os.environ.get("HEALTHD_KERNEL") == "1":
        pytest.fail(f"HEALTHD_KERNEL=1 but this test {NO_KERNEL}", pytrace=False)
    pytest.skip(NO_KERNEL)


@pytest.fixture
async def kernel() -> AsyncIterator[Harness]:
    """NetlinkDriver in a fresh namespace, for kernel-only tests (mark them `kernel`)."""
    require_kernel()
    async for harness in _netlink_harness():
        yield harness
