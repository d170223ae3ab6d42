"""Least privilege in the real kernel: healthd programs IPVS as uid 65534 with only
CAP_NET_ADMIN and CAP_NET_RAW, as its systemd unit runs it, and its external checks run
without those capabilities.

The daemon is started through util-linux `setpriv` (new uid and gid, no supplementary
groups, the two capabilities inherited, ambient and alone in the bounding set) in the
director namespace of the e2e topology (tests/kernel/e2e_helpers.py). It runs on the
system's python3 with the project's virtualenv on its path: the virtualenv's interpreter
lives under /root, which uid 65534 cannot enter.
"""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.e2e_helpers import (
    VIP,
    Daemons,
    Healthd,
    Topology,
    build,
    dest_line,
    global_text,
    service_line,
    table_is,
    take_out,
    wait_for,
)

pytestmark = pytest.mark.kernel

NOBODY = 65534
CAPS = "+net_admin,+net_raw"
CAP_MASK = (1 << 12) | (1 << 13)  # CAP_NET_ADMIN (12) and CAP_NET_RAW (13): 0x3000
CHECKOUT = str(Path(__file__).resolve().parents[2])

# The external check: up only when it runs as uid 65534 with no capability at all; it
# leaves what it saw for the test.
WHOAMI = """#!/bin/sh
seen="$(id -u) $(grep '^CapEff:' /proc/self/status | cut -f2)"
echo "$seen" > "{out}"
test "$seen" = "65534 0000000000000000"
"""


class UnprivilegedHealthd(Healthd):
    """`healthd -c FILE` as uid 65534 with only CAP_NET_ADMIN and CAP_NET_RAW."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PYTHONPATH"] = os.pathsep.join([CHECKOUT, sysconfig.get_paths()["purelib"]])
        env.pop("VIRTUAL_ENV", None)
        return env

    def start(self) -> None:
        argv = [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            f"--inh-caps=-all,{CAPS}",
            f"--ambient-caps={CAPS}",
            f"--bounding-set=-all,{CAPS}",
            "--",
            "/usr/bin/python3",
            "-m",
            "healthd",
            "-c",
            str(self.config),
        ]
        self._spawn(self.topo.director.argv(argv))

    def status(self) -> dict[str, str]:
        """Return the daemon's /proc status lines, by name."""
        assert self.proc is not None
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topology = build(tmp_path_factory.mktemp("e2e-state"), prefix="priv")
    yield topology
    topology.close()


def _config(topo: Topology, workdir: Path, whoami: Path) -> str:
    http = "".join(f"\treal={s.endpoint} masq 1\n" for s in topo.reals)
    return (
        global_text(workdir) + f"\nvirtual={VIP}:80\n{http}\tservice=http\n"
        '\trequest="ok.html"\n\treceive="ok"\n\tscheduler=rr\n\tquiescent=yes\n'
        f"\nvirtual={VIP}:81\n\treal={topo.reals[0].endpoint} masq 1\n"
        f"\tchecktype=external\n\tcheckcommand={whoami}\n\tscheduler=rr\n\tquiescent=yes\n"
    )


def test_healthd_programs_ipvs_as_nobody_with_only_two_capabilities(
    topo: Topology, workdir: Path, daemons: Daemons
) -> None:
    daemons.watch(topo)
    os.chown(workdir, NOBODY, NOBODY)  # its config, log, control socket and pid file
    seen = workdir / "whoami.out"
    whoami = workdir / "whoami.sh"
    whoami.write_text(WHOAMI.format(out=seen))
    whoami.chmod(0o755)
    config = workdir / "e2e.cf"
    config.write_text(_config(topo, workdir, whoami))
    daemon = UnprivilegedHealthd(topo, config, workdir)
    daemons.started.append(daemon)
    daemon.start()

    web = [service_line("rr"), *(dest_line(s, 1) for s in topo.reals)]
    ext = [service_line("rr", 81), dest_line(topo.reals[0], 1, 81)]
    wait_for(table_is(topo, web + ext), "every real up, the external check's too")

    status = daemon.status()
    assert status["Uid"].split() == [str(NOBODY)] * 4
    assert status["Gid"].split() == [str(NOBODY)] * 4
    assert status["Groups"].strip() == ""
    for key in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(status[key], 16) == CAP_MASK, f"{key} {status[key]}"
    # its external check ran as the daemon's user, without the daemon's capabilities
    assert seen.read_text().split() == ["65534", "0000000000000000"]

    # and it keeps the table true: a failing real is quiesced, a deleted one put back
    take_out(topo, daemon, topo.reals[1], "status 500")
    topo.heal_all()
    wait_for(table_is(topo, web + ext), "r2 back")
    topo.ipvsadm("-d", "-t", f"{VIP}:80", "-r", topo.reals[2].endpoint)
    wait_for(table_is(topo, web + ext), "drift repaired")
    assert daemon.events("ipvs.apply_failed") == []
    assert daemon.stop() == 0
