"""ldirectord's marker in /proc/PID/cmdline: a new title in place, a re-exec only as fallback.

Each case runs in a fresh interpreter, since the title is the process's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

# the marked process reports its xoptions, its cmdline, what a child sees of its environment
# and whether ldirectord's liveness test (as healthd.pidfile runs it) accepts it
PROBE = """
import json, os, subprocess, sys
from healthd import marker, pidfile
marker.ensure()
child = subprocess.run(["sh", "-c", "echo $HEALTHD_MARKER_PROBE"], capture_output=True, text=True)
print(json.dumps({
    "xoptions": sorted(sys._xoptions),
    "cmdline": open("/proc/self/cmdline", "rb").read().decode(),
    "child_env": child.stdout.strip(),
    "environ": os.environ.get("HEALTHD_MARKER_PROBE"),
    "instance": pidfile.is_instance(os.getpid()),
}))
"""


def run_probe(env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env=env,
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def test_the_title_is_rewritten_in_place_without_a_second_interpreter() -> None:
    env = {**os.environ, "HEALTHD_MARKER_PROBE": "intact " * 20}
    seen = run_probe(env, "-c", "web.cf")
    assert seen["xoptions"] == [], "no re-exec: the interpreter has no -X option"
    want = f"{sys.executable} -X ldirectord-compatible -c {PROBE} -c web.cf"
    assert str(seen["cmdline"]).rstrip("\0") == want, "the re-exec's command line, as one title"
    assert seen["instance"] is True
    # the environment strings were moved before the title overwrote them
    assert seen["child_env"] == ("intact " * 20).strip()
    assert seen["environ"] == "intact " * 20


def test_without_room_for_the_title_it_re_execs_once() -> None:
    # an environment shorter than " -X ldirectord-compatible": the title cannot overflow into it
    seen = run_probe({"A": "1"}, "web.cf")
    assert seen["xoptions"] == ["ldirectord-compatible"]
    assert str(seen["cmdline"]).split("\0")[:3] == [sys.executable, "-X", "ldirectord-compatible"]
    assert seen["instance"] is True


def test_a_command_line_that_names_ldirectord_is_left_alone() -> None:
    seen = run_probe({**os.environ, "HEALTHD_MARKER_PROBE": "x"}, "/etc/ha.d/ldirectord.cf")
    assert seen["xoptions"] == []
    assert str(seen["cmdline"]).split("\0")[1:3] == ["-c", PROBE], "the original arguments"
    assert seen["instance"] is True
