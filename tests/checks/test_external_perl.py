"""checktype=external-perl with real Perl files: ldirectord's arguments and exit meaning."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from checks.base import CheckContext, CheckOptionError, Status, Target
from checks.external_perl import ExternalPerlCheck
from tests.checks._support import EXTERNAL_FWM as FWM
from tests.checks._support import EXTERNAL_V4 as V4
from tests.checks._support import EXTERNAL_V6 as V6


def perl_file(tmp_path: Path, body: str, name: str = "check.pl") -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)  # not executable: ldirectord reads the file, it never executes it


def check(path: str, timeout: float = 5.0) -> ExternalPerlCheck:
    return ExternalPerlCheck.from_options({"checkcommand": path}, CheckContext(timeout=timeout))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (V4, "192.0.2.21|25|127.0.0.2|8025"),
        (V6, "[2001:db8::10]|80|[::1]|8080"),
        (FWM, "7|0|127.0.0.2|0"),
    ],
    ids=["ipv4", "ipv6-brackets", "fwmark"],
)
async def test_arguments_are_ldirectords(tmp_path: Path, target: Target, expected: str) -> None:
    out = tmp_path / "args"
    body = f'open(my $o, ">", "{out}") or die; print $o join("|", @ARGV); close($o); exit 0;\n'
    result = await check(perl_file(tmp_path, body)).check(target)
    assert result.status is Status.UP, result
    assert out.read_text() == expected


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("exit 0;", Status.UP),
        ("exit;", Status.UP),  # ldirectord: exit without a value is 0
        ("my $x = 1;", Status.UP),  # falling off the end is up
        ("return 5;", Status.UP),  # the file is a sub body: a return value means nothing
        ("exit 1;", Status.DOWN),
        ("exit 256;", Status.DOWN),  # non-zero, even though 256 & 255 == 0
        ("my ($v, $vp, $r, $rp) = @ARGV; exit($rp == 8025 ? 0 : 2);", Status.UP),
    ],
)
async def test_exit_meaning(tmp_path: Path, body: str, status: Status) -> None:
    result = await check(perl_file(tmp_path, body + "\n")).check(V4)
    assert result.status is status, result


async def test_die_is_down_with_its_message(tmp_path: Path) -> None:
    result = await check(perl_file(tmp_path, 'die "backend is sick\\n";\n')).check(V4)
    assert result.status is Status.DOWN
    assert result.reason == "exit_status"
    assert "backend is sick" in result.detail


async def test_code_runs_under_strict(tmp_path: Path) -> None:
    # ldirectord compiles the file inside its own `use strict` scope
    result = await check(perl_file(tmp_path, "$undeclared = 1;\n")).check(V4)
    assert result.status is Status.DOWN
    assert "explicit package name" in result.detail


async def test_syntax_error_is_down(tmp_path: Path) -> None:
    result = await check(perl_file(tmp_path, "if (\n")).check(V4)
    assert result.status is Status.DOWN
    assert "syntax error" in result.detail


async def test_missing_file_is_down(tmp_path: Path) -> None:
    result = await check(str(tmp_path / "absent.pl")).check(V4)
    assert result.status is Status.DOWN
    assert "cannot open external-perl checkcommand file" in result.detail


async def test_edits_apply_at_once(tmp_path: Path) -> None:
    # ldirectord caches the compiled file until a restart; healthd reads it every time
    path = perl_file(tmp_path, "exit 1;\n")
    probe = check(path)
    assert (await probe.check(V4)).status is Status.DOWN
    await asyncio.to_thread(Path(path).write_text, "exit 0;\n")
    assert (await probe.check(V4)).status is Status.UP


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    body = (
        "my $pid = fork(); if ($pid == 0) { sleep 60; CORE::exit(0); }\n"
        f'open(my $o, ">", "{pidfile}") or die; print $o $pid; close($o);\n'
        "sleep 60;\n"
    )
    result = await check(perl_file(tmp_path, body), timeout=0.5).check(V4)
    assert result.status is Status.DOWN
    assert result.reason == "timeout"
    child = int(pidfile.read_text())
    for _ in range(100):  # SIGKILL is delivered at once; allow the scheduler a moment
        if not _alive(child):
            break
        await asyncio.sleep(0.01)
    assert not _alive(child), "the Perl file's child survived the timeout"


def _alive(pid: int) -> bool:
    """Return True while pid exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_checkcommand_is_required() -> None:
    with pytest.raises(CheckOptionError) as info:
        ExternalPerlCheck.from_options({"checkcommand": " "}, CheckContext(timeout=1))
    assert info.value.option == "checkcommand"
