"""command_user=: who external checks, fallbackcommand and callback run as.

The resolution is tested for every daemon uid; the switch itself with real processes (the
tests run as root, as the daemon does): `id` inside the command says who it was.
"""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

from checks import _process, _runas
from healthd import hooks, privileges
from healthd.config import ConfigErrors, format_errors, parse_text

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
NOBODY = privileges.resolve(None, euid=0)
SETPRIV = "/usr/bin/setpriv"


def test_a_root_daemon_runs_commands_as_nobody_by_default():
    assert (NOBODY.uid, NOBODY.gid) == (65534, 65534)
    assert 0 not in NOBODY.groups  # root's supplementary groups are not kept
    assert NOBODY.spawn_options() == {
        "user": 65534,
        "group": 65534,
        "extra_groups": list(NOBODY.groups),
    }


def test_root_opts_back_in_and_numbers_name_uids():
    assert privileges.resolve("root", euid=0).uid is None  # no switch: the daemon's own
    assert privileges.resolve("65534", euid=0).uid == 65534


def test_a_daemon_that_is_not_root_runs_commands_as_itself():
    assert privileges.resolve(None, euid=998).uid is None
    assert privileges.resolve("998", euid=998).uid is None


def test_a_daemon_that_is_not_root_cannot_become_another_user():
    with pytest.raises(privileges.PrivilegeError) as caught:
        privileges.resolve("root", euid=998)
    assert str(caught.value) == (
        "command_user=root: healthd runs as uid 998 and cannot run commands as uid 0"
    )


def test_an_unknown_user_is_an_error_at_its_line():
    with pytest.raises(ConfigErrors) as caught:
        parse_text("command_user=no-such-user-here\n", "t.cf")
    assert format_errors(caught.value).splitlines()[0] == (
        "t.cf:1:14: error: unknown command_user 'no-such-user-here' (no such user)"
    )
    with pytest.raises(privileges.PrivilegeError, match="no such user"):
        privileges.resolve("no-such-user-here", euid=0)


def test_the_directive_reaches_the_model():
    assert parse_text("command_user=nobody\n", "t.cf").command_user == "nobody"
    assert parse_text("checkinterval=5\n", "t.cf").command_user is None


def test_setpriv_drops_ambient_capabilities_in_front_of_the_command():
    run_as = _runas.RunAs(drop_caps=SETPRIV)
    assert run_as.argv(["/bin/check", "a"]) == [
        SETPRIV,
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--",
        "/bin/check",
        "a",
    ]
    assert _runas.SAME.argv(["/bin/check"]) == ["/bin/check"]


def test_ambient_caps_reads_the_mask(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapAmb:\t0000000000003000\n")
    assert _runas.ambient_caps(str(status)) == 0x3000
    assert _runas.ambient_caps(str(tmp_path / "missing")) == 0


UID_IS = 'test "$(id -u)" = {uid} && test "$(id -g)" = {uid} && test "$(id -G)" = {groups}'


@ROOT_ONLY
async def test_an_external_check_runs_as_nobody():
    _runas.use(NOBODY)
    probe = ["/bin/sh", "-c", UID_IS.format(uid=65534, groups="'65534'")]
    result = await _process.run(probe, 5.0, "id")
    assert result.up, result.detail


@ROOT_ONLY
async def test_fallbackcommand_and_callback_run_as_nobody():
    _runas.use(NOBODY)
    ran = await hooks.run_command(["/bin/sh", "-c", UID_IS.format(uid=65534, groups="'65534'")])
    assert ran.ok, ran.detail
    as_root = await hooks.run_command(["/bin/sh", "-c", "test $(id -u) = 65534"])
    assert as_root.ok  # the same hook as seen from the command line: not root


@ROOT_ONLY
async def test_command_user_root_keeps_root_and_execute_instances_keep_the_daemons_rights():
    _runas.use(privileges.resolve("root"))
    assert (await hooks.run_command(["/bin/sh", "-c", "test $(id -u) = 0"])).ok
    _runas.use(NOBODY)
    own = await hooks.run_command(["/bin/sh", "-c", "test $(id -u) = 0"], as_command_user=False)
    assert own.ok


@ROOT_ONLY
async def test_a_command_nobody_cannot_run_is_exec_failed_not_a_crash(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    script = private / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o700)
    _runas.use(NOBODY)
    result = await _process.run([str(script)], 5.0, str(script))
    assert (result.status, result.reason) == ("down", "exec_failed")
    assert "Permission denied" in result.detail


CHILD = textwrap.dedent(
    """
    import asyncio
    from checks import _process, _runas
    from healthd import privileges
    assert _runas.ambient_caps() == 0x3000, hex(_runas.ambient_caps())
    probe = ["/bin/sh", "-c", "grep -q '^CapEff:.0000000000000000$' /proc/self/status"]
    bare = asyncio.run(_process.run(probe, 5.0, "caps"))
    _runas.use(privileges.resolve(None))
    dropped = asyncio.run(_process.run(probe, 5.0, "caps"))
    print(bare.status, dropped.status)
    """
)


@ROOT_ONLY
def test_a_daemon_with_ambient_caps_gives_its_commands_none():
    # the daemon as its unit runs it: not root, CAP_NET_ADMIN and CAP_NET_RAW ambient;
    # the system python, since the virtualenv's may sit in a directory only root reads
    argv = [
        SETPRIV,
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+net_admin,+net_raw",
        "--ambient-caps=+net_admin,+net_raw",
        "/usr/bin/python3",
        "-c",
        CHILD,
    ]
    env = {"PYTHONPATH": os.getcwd(), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # without the drop the command inherits the caps (down); with it, it has none (up)
    assert done.stdout.split() == ["down", "up"]


def test_a_nul_in_the_user_is_a_located_error_not_a_crash():
    # found by tests/unit/test_config_fuzz.py: pwd.getpwnam raises ValueError on a NUL
    with pytest.raises(ConfigErrors) as caught:
        parse_text("command_user=a\x00b\n", "t.cf")
    assert [str(d) for d in caught.value.errors] == [
        "t.cf:1:14: error: unknown command_user 'a\\x00b' (no such user)"
    ]
