"""NetlinkDriver on a kernel without IPVS: it tries `modprobe ip_vs` first, then says so in a line.

This machine's kernel has no IPVS, so the IPVS generic-netlink family is missing: the driver
must run modprobe (here a stand-in on PATH that records its arguments) before it gives up.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from healthd.errors import DriverError
from healthd.ipvs import netlink

pytestmark = pytest.mark.skipif(
    os.path.exists("/proc/net/ip_vs"), reason="IPVS is available here, so nothing is loaded"
)

NO_IPVS = "IPVS is not available in this kernel (modprobe ip_vs failed)"


def _fake_modprobe(bin_dir: Path, record: Path, status: int) -> None:
    script = bin_dir / "modprobe"
    script.write_text(f'#!/bin/sh\necho "$@" >>{record}\nexit {status}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize("status", [1, 0], ids=["modprobe-fails", "modprobe-loads-nothing"])
async def test_missing_ipvs_tries_modprobe_once_then_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    record = tmp_path / "modprobe.args"
    _fake_modprobe(tmp_path, record, status)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    driver = netlink.NetlinkDriver()
    try:
        with pytest.raises(DriverError) as info:
            await driver.dump()
    finally:
        await driver.aclose()
    assert str(info.value) == NO_IPVS
    assert "\n" not in str(info.value)
    assert record.read_text() == "ip_vs\n"
