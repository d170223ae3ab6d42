"""The systemd units: required keys parsed from the files, and `systemd-analyze verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
INSTALLED = "/usr/local/bin/healthd"


def _parse(name: str) -> dict[str, dict[str, str]]:
    """Return each section's keys; a key given more than once (ExecStartPre) joins with \\n."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in (UNITS / name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current[key] = f"{current[key]}\n{value}" if key in current else value
    return sections


@pytest.mark.parametrize(
    ("name", "config"),
    [("healthd.service", "/etc/ha.d/ldirectord.cf"), ("healthd@.service", "/etc/ha.d/%i.cf")],
)
def test_required_keys(name, config):
    unit = _parse(name)
    svc = unit["Service"]
    assert svc["Type"] == "notify"
    assert svc["ExecStart"] == f"{INSTALLED} -c {config}"
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    # ProtectKernelModules=yes blocks healthd's own modprobe: the unit loads ip_vs first
    assert svc["ProtectKernelModules"] == "yes"
    modprobe, logfile = svc["ExecStartPre"].split("\n")
    assert modprobe == "-+/sbin/modprobe ip_vs"
    # the default logfile= is made the daemon's, as root (+), before it starts
    assert logfile.startswith("-+/bin/sh -c 'touch /var/log/ldirectord.log && chown healthd:")
    # least privilege: a static user, only the two capabilities, no way to gain more
    assert (svc["User"], svc["Group"]) == ("healthd", "healthd")
    assert "DynamicUser" not in svc
    assert svc["Restart"] == "on-failure"
    assert svc["RestartPreventExitStatus"] == "2"  # config errors do not loop
    assert svc["WatchdogSec"]
    assert set(svc["CapabilityBoundingSet"].split()) == {"CAP_NET_ADMIN", "CAP_NET_RAW"}
    assert set(svc["AmbientCapabilities"].split()) == {"CAP_NET_ADMIN", "CAP_NET_RAW"}
    assert svc["ProtectSystem"] == "strict"
    assert set(svc["ReadWritePaths"].split()) == {"/run/healthd", "/var/log"}
    assert svc["RuntimeDirectory"] == "healthd"
    assert svc["RuntimeDirectoryMode"] == "0700"
    assert svc["RuntimeDirectoryPreserve"] == "yes"  # shared by every instance
    assert svc["StateDirectory"] == "healthd"  # the state file of healthd ctl overrides
    assert set(svc["RestrictAddressFamilies"].split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    }
    for key in ("ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert svc[key] == "yes"
    assert svc["SystemCallArchitectures"] == "native"
    assert unit["Unit"]["ConditionPathExists"] == config
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_sysusers_file_creates_the_units_user():
    lines = [
        line.split()
        for line in (UNITS / "healthd.sysusers.conf").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert [(kind, name) for kind, name, *_ in lines] == [("u", "healthd")]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
@pytest.mark.parametrize(
    ("name", "as_"), [("healthd.service", None), ("healthd@.service", "healthd@web.service")]
)
def test_systemd_analyze_verify(tmp_path, name, as_):
    healthd = Path(sys.executable).with_name("healthd")
    assert healthd.exists()
    text = (UNITS / name).read_text().replace(INSTALLED, str(healthd))
    (tmp_path / name).write_text(text)
    target = tmp_path / (as_ or name)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(target)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    # verify exits 0 for unknown keys too: it must have nothing to say about our unit
    # (it also loads the host's other units and may warn about those)
    ours = [line for line in proc.stderr.splitlines() if "healthd" in line]
    assert ours == [], proc.stderr
