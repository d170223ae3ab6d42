"""fallbackcommand and callback: ldirectord's arguments, the shell rule, timeouts, isolation."""

from __future__ import annotations

import asyncio
import os
from ipaddress import ip_address
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from healthd import hooks
from healthd.model import Proto, Virtual


def script(tmp_path: Path, body: str, name: str = "hook.sh") -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def alive(pid: int) -> bool:
    """Return whether pid runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ("/usr/local/bin/fb", ["start", "192.0.2.10:80", "tcp"], None),
        ("/bin/fb --flag", ["stop", "x:1", "udp"], None),
        ("/bin/fb > /tmp/log", ["start", "x:1", "tcp"], "shell"),
        ("logger $HOME", ["start"], "shell"),
        ("/bin/fb", ["start", "[2001:db8::1]:80", "tcp"], "shell"),  # [ ] are metacharacters
    ],
)
def test_command_argv_follows_perl_system(command, args, expected):
    argv = hooks.command_argv(command, args)
    line = " ".join([command, *args])
    if expected == "shell":
        assert argv == ["/bin/sh", "-c", line]
    else:
        assert argv == line.split()


def test_fallback_args_as_ldirectord_passes_them():
    v4 = Virtual(Proto.TCP, ip_address("192.0.2.10"), 80)
    v6 = Virtual(Proto.UDP, ip_address("2001:db8::1"), 53)
    fwm = Virtual(Proto.FWM, None, 0, fwmark=5)
    assert hooks.fallback_args(v4, True) == ["start", "192.0.2.10:80", "tcp"]
    assert hooks.fallback_args(v6, False) == ["stop", "[2001:db8::1]:53", "udp"]
    assert hooks.fallback_args(fwm, True) == ["start", "5:0", "fwm"]


async def test_run_command_reports_exit_status_and_first_stderr_line(tmp_path):
    ok = await hooks.run_command([str(script(tmp_path, "exit 0\n"))])
    assert ok.ok
    assert ok.returncode == 0
    bad = await hooks.run_command([str(script(tmp_path, "echo oops >&2\necho more >&2\nexit 3\n"))])
    assert bad.reason == "exit_status"
    assert bad.returncode == 3
    assert bad.detail == "exit status 3: oops"
    quiet = await hooks.run_command([str(script(tmp_path, "exit 4\n"))])
    assert quiet.detail == "exit status 4"
    killed = await hooks.run_command([str(script(tmp_path, "kill -TERM $$\n"))])
    assert killed.reason == "exit_status"
    assert killed.returncode == -15
    assert killed.detail == "killed by signal 15"


async def test_run_command_exec_failure(tmp_path):
    result = await hooks.run_command([str(tmp_path / "missing")])
    assert result.reason == "exec_failed"
    assert result.returncode is None
    assert (await hooks.run_command([])).reason == "exec_failed"


async def test_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    # the hook starts a grandchild that would outlive a plain kill of the direct child
    body = f"sleep 30 &\necho $! > {pidfile}\nwait\n"
    result = await hooks.run_command([str(script(tmp_path, body))], limit=0.3)
    assert result.reason == "timeout"
    grandchild = int(pidfile.read_text())
    for _ in range(50):
        if not alive(grandchild):
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the grandchild survived the timeout")


async def test_hooks_see_no_stdin_and_run_in_their_own_session(tmp_path):
    out = tmp_path / "out"
    body = f'read line; echo "read=$? sid=$(ps -o sid= -p $$)" > {out}\n'
    result = await hooks.run_command([str(script(tmp_path, body))])
    assert result.ok
    text = out.read_text()
    assert "read=1" in text  # EOF at once: stdin is /dev/null
    sid = int(text.split("sid=")[1])
    assert sid != os.getsid(0)


async def test_stdin_bytes_reach_the_command_and_a_command_that_ignores_them_is_fine(tmp_path):
    out = tmp_path / "out"
    fed = await hooks.run_command([str(script(tmp_path, f"cat > {out}\n"))], stdin=b"a\nb\n")
    assert fed.ok
    assert out.read_bytes() == b"a\nb\n"
    ignored = await hooks.run_command(
        [str(script(tmp_path, "exit 5\n", "b.sh"))], stdin=b"x" * 2**20
    )
    assert (ignored.reason, ignored.returncode) == ("exit_status", 5)  # no broken-pipe error


async def test_run_hook_logs_success_and_failure(tmp_path):
    with capture_logs() as captured:
        await hooks.run_hook("fallbackcommand", [str(script(tmp_path, "exit 0\n"))])
        await hooks.run_hook("fallbackcommand", [str(script(tmp_path, "exit 2\n", "b.sh"))])
    ran, failed = captured
    assert (ran["event"], ran["hook"], ran["status"]) == ("hook.ran", "fallbackcommand", 0)
    assert (failed["event"], failed["reason"]) == ("hook.failed", "exit_status")
    assert failed["log_level"] == "warning"


async def test_callback_gets_the_config_path(tmp_path):
    out = tmp_path / "args"
    cb = script(tmp_path, f'echo "$@" > {out}\n')
    result = await hooks.run_callback(str(cb), "/etc/ha.d/ldirectord.cf")
    assert result.ok
    assert out.read_text().strip() == "/etc/ha.d/ldirectord.cf"


async def test_runner_keeps_order_per_key_and_runs_fallbackcommand(tmp_path):
    out = tmp_path / "calls"
    # the first call is slow; the second must still come after it
    body = f'[ "$1" = start ] && sleep 0.2\necho "$@" >> {out}\n'
    fb = script(tmp_path, body)
    v = Virtual(Proto.TCP, ip_address("192.0.2.10"), 80, fallbackcommand=str(fb))
    runner = hooks.HookRunner()
    first = runner.fallback(v, True)
    second = runner.fallback(v, False)
    assert first is not None
    assert second is not None
    await runner.drain(5.0)
    assert out.read_text().splitlines() == ["start 192.0.2.10:80 tcp", "stop 192.0.2.10:80 tcp"]
    assert runner.fallback(Virtual(Proto.TCP, ip_address("192.0.2.11"), 80), True) is None


async def test_drain_cancels_hooks_that_overrun(tmp_path):
    runner = hooks.HookRunner()
    task = runner.submit("k", "callback", [str(script(tmp_path, "sleep 30\n"))])
    await runner.drain(0.2)
    assert task.done()


async def test_a_service_started_in_the_background_is_neither_waited_for_nor_killed(tmp_path):
    # fallbackcommand=/etc/init.d/sorry-server: the script starts a daemon that keeps the
    # script's stderr open, then exits; as with ldirectord's system(), the hook ends there
    pidfile = tmp_path / "service.pid"
    body = f"sleep 30 &\necho $! > {pidfile}\necho started >&2\nexit 3\n"
    result = await hooks.run_command([str(script(tmp_path, body))], limit=5.0)
    service = int(pidfile.read_text())
    try:
        assert (result.reason, result.returncode) == ("exit_status", 3)
        assert result.detail == "exit status 3: started"
        assert alive(service), "the hook's background service was killed"
    finally:
        os.kill(service, 9)


def test_run_command_on_uvloop_the_daemons_loop(tmp_path):
    uvloop = pytest.importorskip("uvloop")
    pidfile = tmp_path / "service.pid"
    body = f"sleep 30 &\necho $! > {pidfile}\necho oops >&2\nexit 2\n"
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(hooks.run_command([str(script(tmp_path, body))], limit=5.0))
    os.kill(int(pidfile.read_text()), 9)
    assert (result.reason, result.detail) == ("exit_status", "exit status 2: oops")
