"""checktype=external with real scripts: exit codes, ldirectord's arguments, timeouts, kills."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
from pathlib import Path

import pytest

from checks.base import CheckContext, CheckOptionError, Reason, Status
from checks.external import ExternalCheck, arguments
from tests.checks._support import EXTERNAL_FWM as FWM
from tests.checks._support import EXTERNAL_V4 as V4
from tests.checks._support import EXTERNAL_V6 as V6


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def external(command: str, timeout: float = 2.0) -> ExternalCheck:
    return ExternalCheck.from_options({"checkcommand": command}, CheckContext(timeout=timeout))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (V4, ["192.0.2.21", "25", "127.0.0.2", "8025"]),
        (V6, ["[2001:db8::10]", "80", "[::1]", "8080"]),
        (FWM, ["7", "0", "127.0.0.2", "0"]),
    ],
    ids=["ipv4", "ipv6-brackets", "fwmark"],
)
async def test_arguments_reach_the_command_exactly(tmp_path, target, expected) -> None:
    out = tmp_path / "args"
    command = script(tmp_path, "record", f'for a in "$@"; do echo "$a"; done > {out}\n')
    assert arguments(target) == expected
    result = await external(command).check(target)
    assert result.status is Status.UP
    assert out.read_text().splitlines() == expected


async def test_exit_zero_is_up(tmp_path) -> None:
    result = await external(script(tmp_path, "ok", "exit 0\n")).check(V4)
    assert (result.status, result.reason, result.detail) == (Status.UP, "ok", "exit 0")


async def test_nonzero_exit_is_down_with_code_and_first_stderr_line(tmp_path) -> None:
    body = "echo 'backend says no' >&2\necho 'second line' >&2\nexit 3\n"
    result = await external(script(tmp_path, "fail", body)).check(V4)
    assert (result.status, result.reason) == (Status.DOWN, Reason.EXIT_STATUS)
    assert result.detail == "exit 3: backend says no"


async def test_stdout_noise_does_not_matter(tmp_path) -> None:
    body = "i=0; while [ $i -lt 2000 ]; do echo lots of output; i=$((i+1)); done\nexit 1\n"
    result = await external(script(tmp_path, "noisy", body)).check(V4)
    assert (result.reason, result.detail) == ("exit_status", "exit 1")


async def test_timeout_kills_the_whole_process_group(tmp_path) -> None:
    pids = tmp_path / "pids"
    # The script starts a child that ignores SIGTERM, records both pids, then sleeps forever.
    body = (
        "sh -c 'trap \"\" TERM; while :; do sleep 0.05; done' &\n"
        f'echo "$$ $!" > {pids}\n'
        "while :; do sleep 0.05; done\n"
    )
    result = await external(script(tmp_path, "hang", body), timeout=0.3).check(V4)
    assert (result.status, result.reason) == (Status.DOWN, Reason.TIMEOUT)
    leader, child = (int(p) for p in pids.read_text().split())
    # SIGKILL is delivered asynchronously: give the kernel a moment (bounded) to finish it.
    for _ in range(100):
        if not _live_group_members(leader):
            break
        await asyncio.sleep(0.01)
    assert not _alive(child), "the child that ignored SIGTERM survived"
    assert not _alive(leader)
    assert _live_group_members(leader) == [], "processes of the check's group survived"


def _live_group_members(pgid: int) -> list[int]:
    """Return the pids of live (non-zombie) processes whose process group is pgid."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat_file.parent.name))
    return members


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_missing_command_is_exec_failed(tmp_path) -> None:
    result = await external(str(tmp_path / "no-such-script")).check(V4)
    assert (result.status, result.reason) == (Status.DOWN, Reason.EXEC_FAILED)
    assert "No such file" in result.detail


async def test_non_executable_command_is_exec_failed(tmp_path) -> None:
    path = tmp_path / "plain"
    path.write_text("exit 0\n")
    result = await external(str(path)).check(V4)
    assert result.reason == "exec_failed"


async def test_command_killed_by_a_signal_is_reported(tmp_path) -> None:
    result = await external(script(tmp_path, "suicide", "kill -USR1 $$\n")).check(V4)
    assert (result.reason, result.detail) == (
        "exit_status",
        f"killed by signal {signal.SIGUSR1.name}",
    )


async def test_command_runs_in_its_own_session(tmp_path) -> None:
    out = tmp_path / "sid"
    command = script(tmp_path, "sid", f"cut -d' ' -f6 /proc/$$/stat > {out}\n")
    await external(command).check(V4)
    assert int(out.read_text().split()[0]) != os.getsid(0)


def test_checkcommand_is_required() -> None:
    with pytest.raises(CheckOptionError) as info:
        ExternalCheck.from_options({}, CheckContext(timeout=1))
    assert info.value.option == "checkcommand"
