"""`healthd demo` as root where ip_vs is loaded: it runs on the kernel's IPVS and says so.

The host tests run the demo on the in-memory table only (tests/system/test_demo.py); here, in
the test VM, the same command drives the real kernel table in a fresh network namespace, and
leaves that table empty when it ends.
"""

from __future__ import annotations

import re
import sys

import pytest

from tests.kernel.netns import Lab

pytestmark = pytest.mark.kernel


def test_demo_programs_the_kernel_table_and_cleans_up(lab: Lab) -> None:
    ns = lab.netns("demo")
    proc = ns.run([sys.executable, "-m", "healthd", "demo", "--duration", "60"], check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "using the kernel's IPVS table (root, ip_vs loaded)" in out
    assert "in-memory" not in out
    victim = re.search(r"making (127\.0\.0\.3:\d+) fail", out)
    assert victim is not None, out
    assert f"{victim.group(1)} was taken out of the table" in out
    assert f"{victim.group(1)} is back in the table" in out
    # the tables it printed are the kernel's, as ipvsadm shows them
    assert re.search(r"TCP  127\.0\.0\.100:8080 wrr\n  -> 127\.0\.0\.\d:\d+ +Masq +1 ", out), out
    assert out.rstrip().endswith("demo finished")
    # only the demo's own service was ever there, and it is gone
    assert ns.run(["ipvsadm", "-Sn"]).stdout == ""
