"""The daemon's lifecycle on a stub engine: ready, reload, broken reload, autoreload, stop.

Real asyncio, a real sd_notify datagram socket and a real control socket; only the Engine is a
stand-in that records what the daemon asked of it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthd import control, pidfile, plugins
from healthd.daemon import Daemon, Request, fingerprint
from healthd.errors import ConfigErrors, Diagnostic
from healthd.location import Location
from healthd.model import Config
from healthd.sdnotify import Notifier
from tests.component.support import until


class StubEngine:
    def __init__(self, config, driver, listeners):
        self.config = config
        self.listeners = listeners
        self.calls: list[str] = []
        self.reloaded: list[Config] = []

    async def run(self) -> None:
        self.calls.append("run")
        for listener in self.listeners:
            await listener.on_state("running")
        await asyncio.Event().wait()

    async def reload(self, config: Config) -> None:
        self.calls.append("reload")
        self.reloaded.append(config)

    async def shutdown(self) -> None:
        self.calls.append("shutdown")

    def snapshot(self) -> dict[str, object]:
        return {"virtuals": [{"name": "tcp/192.0.2.10:80", "reals": len(self.reloaded)}]}


class Loader:
    """Loads by reading the file: 'broken' in it means a config error at line 1."""

    def __init__(self) -> None:
        self.loads = 0

    def __call__(self, path: str) -> Config:
        self.loads += 1
        text = Path(path).read_text()
        if "broken" in text:
            d = Diagnostic(Location(path, 1, 1), "broken on purpose")
            raise ConfigErrors([d], {path: text.splitlines()})
        autoreload = "autoreload" in text
        return Config(path=path, checkinterval=0.05, autoreload=autoreload)


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.setblocking(False)
        yield s, path
        s.close()


@pytest.fixture
def rundir() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as d:  # short: unix socket paths are limited
        yield d


def _messages(s: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(s.recv(4096).decode())
        except BlockingIOError:
            return out


def _exists(path: str) -> bool:
    return os.path.exists(path)


async def _started(d: Daemon) -> asyncio.Task[int]:
    """Run the daemon in a task and return it once the daemon reports ready."""
    task = asyncio.create_task(d.run())
    await until(lambda: d.snapshot()["daemon"]["ready"])
    return task


def _daemon(cfg: Path, notify: str | None = None, **kw) -> tuple[Daemon, Loader]:
    loader = Loader()
    config = loader(str(cfg))
    d = Daemon(
        config,
        driver=object(),  # type: ignore[arg-type]
        notifier=Notifier(notify),
        engine_factory=StubEngine,
        loader=loader,
        **kw,
    )
    return d, loader


async def test_ready_reload_stop_notifications(tmp_path, notify_socket):
    s, path = notify_socket
    cfg = tmp_path / "web.cf"
    cfg.write_text("ok\n")
    d, _ = _daemon(cfg, path)
    task = await _started(d)
    d.request(Request.RELOAD)
    await until(lambda: d.reloads == 1)
    d.request(Request.STOP)
    assert await task == 0
    msgs = "".join(_messages(s))
    assert "READY=1\nSTATUS=running: 0 virtual services\n" in msgs
    assert msgs.index("STATUS=starting") < msgs.index("READY=1")
    reload_at = msgs.index("RELOADING=1\nMONOTONIC_USEC=")
    assert msgs.index("READY=1", reload_at) > reload_at
    assert msgs.rindex("STOPPING=1") > reload_at
    assert d.engine.calls == ["run", "reload", "shutdown"]  # type: ignore[attr-defined]


async def test_broken_reload_keeps_running_config(tmp_path, notify_socket):
    from structlog.testing import capture_logs

    s, path = notify_socket
    cfg = tmp_path / "web.cf"
    cfg.write_text("ok\n")
    d, loader = _daemon(cfg, path)
    task = await _started(d)
    before = d.config
    cfg.write_text("broken\n")
    with capture_logs() as logs:
        assert await d.reload() is False
    failed = [e for e in logs if e["event"] == "config.reload_failed"]
    assert len(failed) == 1
    assert "broken on purpose" in failed[0]["errors"]
    assert d.config is before
    assert d.engine.calls == ["run"]  # type: ignore[attr-defined]
    assert "STATUS=reload failed" in "".join(_messages(s))
    d.request(Request.STOP)
    assert await task == 0
    assert loader.loads == 2


async def test_autoreload_on_change(tmp_path):
    cfg = tmp_path / "web.cf"
    cfg.write_text("autoreload\n")
    d, _ = _daemon(cfg)
    task = await _started(d)
    cfg.write_text("autoreload, changed\n")
    await until(lambda: d.reloads == 1)
    # an unchanged file is not reloaded again
    await asyncio.sleep(0.2)
    assert d.reloads == 1
    d.request(Request.STOP)
    assert await task == 0


async def test_no_autoreload_without_the_directive(tmp_path):
    cfg = tmp_path / "web.cf"
    cfg.write_text("plain\n")
    d, _ = _daemon(cfg)
    task = await _started(d)
    cfg.write_text("plain, changed\n")
    await asyncio.sleep(0.2)
    assert d.reloads == 0
    d.request(Request.STOP)
    assert await task == 0


async def test_callback_runs_after_reload(tmp_path):
    marker = tmp_path / "called"
    script = tmp_path / "cb.sh"
    script.write_text(f'#!/bin/sh\necho "$1" > {marker}\n')
    script.chmod(0o755)
    cfg = tmp_path / "web.cf"
    cfg.write_text("ok\n")

    def load_with_callback(p: str) -> Config:
        # the script and its marker live in a root-only tmp_path: run it as root
        return Config(path=p, checkinterval=10, callback=str(script), command_user="root")

    d = Daemon(
        load_with_callback(str(cfg)),
        driver=object(),  # type: ignore[arg-type]
        engine_factory=StubEngine,
        loader=load_with_callback,
    )
    task = await _started(d)
    assert await d.reload() is True
    assert marker.read_text() == f"{cfg}\n"
    d.request(Request.STOP)
    assert await task == 0


async def test_signals_hup_and_term(tmp_path):
    cfg = tmp_path / "web.cf"
    cfg.write_text("ok\n")
    d, _ = _daemon(cfg)
    task = await _started(d)
    os.kill(os.getpid(), signal.SIGHUP)
    await until(lambda: d.reloads == 1)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await task == 0
    assert d.engine.calls[-1] == "shutdown"  # type: ignore[attr-defined]
    # the handlers are gone again: the loop no longer owns SIGHUP
    assert signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, signal.default_int_handler)


async def test_control_socket_serves_snapshot_and_pidfile_removed(tmp_path, rundir):
    cfg = tmp_path / "web.cf"
    cfg.write_text("ok\n")
    sock = os.path.join(rundir, "sub", "web.cf.sock")
    pid_path = str(tmp_path / "ldirectord.web.cf.pid")
    pidfile.write(pid_path)
    d, _ = _daemon(cfg, control_path=sock, pid_path=pid_path)
    task = await _started(d)
    assert os.stat(sock).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(sock)).st_mode & 0o777 == 0o700
    view = await asyncio.to_thread(control.query, sock)
    assert view["virtuals"] == [{"name": "tcp/192.0.2.10:80", "reals": 0}]
    assert view["daemon"]["pid"] == os.getpid()  # type: ignore[index]
    d.request(Request.STOP)
    assert await task == 0
    assert not _exists(sock)
    assert not _exists(pid_path)


async def test_second_control_server_refused(tmp_path, rundir):
    sock = os.path.join(rundir, "x.sock")
    first = control.ControlServer(sock, lambda: {"a": 1})
    await first.start()
    try:
        second = control.ControlServer(sock, lambda: {"b": 2})
        with pytest.raises(control.ControlError, match="already serving"):
            await second.start()
        assert (await asyncio.to_thread(control.query, sock)) == {"a": 1}
    finally:
        await first.close()


async def test_stale_control_socket_replaced(rundir):
    sock = os.path.join(rundir, "x.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(sock)
    dead.close()  # the file stays, nobody listens
    server = control.ControlServer(sock, lambda: {"ok": True})
    await server.start()
    try:
        assert (await asyncio.to_thread(control.query, sock)) == {"ok": True}
    finally:
        await server.close()


def test_query_without_daemon_is_a_clear_error(rundir):
    with pytest.raises(control.ControlError, match=r"cannot read status from .*x\.sock"):
        control.query(os.path.join(rundir, "x.sock"))


def test_fingerprint_tracks_content(tmp_path):
    f = tmp_path / "a.cf"
    f.write_text("one\n")
    first = fingerprint(str(f))
    assert first is not None
    assert fingerprint(str(f), first) is first
    f.write_text("two\n")
    second = fingerprint(str(f), first)
    assert second is not None
    assert second.digest != first.digest
    assert fingerprint(str(tmp_path / "absent")) is None


async def test_execute_instances_follow_the_daemon(tmp_path, monkeypatch):
    from healthd import hooks

    ran: list[tuple[str, str]] = []

    async def fake_run_hook(name, argv, **kw):
        assert name == "execute"
        assert argv[:3] == [sys.executable, "-m", "healthd"]
        ran.append((argv[3], argv[4]))
        ok = not (argv[3] == "b.cf" and argv[4] == "reload")  # b's reload fails
        return hooks.HookResult(tuple(argv), 0 if ok else 1, "ok" if ok else "exit_status")

    monkeypatch.setattr(hooks, "run_hook", fake_run_hook)
    cfg = tmp_path / "web.cf"
    cfg.write_text("ok\n")
    configs = iter([("a.cf", "b.cf"), ("b.cf", "c.cf")])

    def load(p: str) -> Config:
        return Config(path=p, checkinterval=10, execute=next(configs))

    d = Daemon(load(str(cfg)), driver=object(), engine_factory=StubEngine, loader=load)  # type: ignore[arg-type]
    task = asyncio.create_task(d.run())
    await until(lambda: len(ran) == 2)
    assert ran == [("a.cf", "start"), ("b.cf", "start")]
    assert await d.reload() is True
    assert ran[2:] == [("a.cf", "stop"), ("b.cf", "reload"), ("b.cf", "start"), ("c.cf", "start")]
    d.request(Request.STOP)
    assert await task == 0
    assert ran[6:] == [("b.cf", "stop"), ("c.cf", "stop")]


class CrashingEngine(StubEngine):
    async def run(self) -> None:
        raise RuntimeError("bug in the engine")


async def test_engine_crash_is_logged_and_exits_1(tmp_path):
    from structlog.testing import capture_logs

    cfg = tmp_path / "web.cf"
    cfg.write_text("ok\n")
    pid_path = str(tmp_path / "x.pid")
    pidfile.write(pid_path)
    d, _ = _daemon(cfg, pid_path=pid_path)
    d.engine = CrashingEngine(d.config, None, [])
    with capture_logs() as logs:
        assert await d.run() == 1
    crashed = [e for e in logs if e["event"] == "daemon.crashed"]
    assert len(crashed) == 1
    assert isinstance(crashed[0]["exc_info"], RuntimeError)
    assert "shutdown" not in d.engine.calls  # type: ignore[attr-defined]
    assert not _exists(pid_path)


class SlowShutdownEngine(StubEngine):
    async def shutdown(self) -> None:
        self.calls.append("shutdown")
        await asyncio.Event().wait()


async def test_shutdown_is_bounded_by_grace(tmp_path):
    from structlog.testing import capture_logs

    cfg = tmp_path / "web.cf"
    cfg.write_text("ok\n")
    d, _ = _daemon(cfg, grace=0.05)
    d.engine = SlowShutdownEngine(d.config, None, [d.engine.listeners[0]])  # type: ignore[attr-defined]
    task = await _started(d)
    with capture_logs() as logs:
        d.request(Request.STOP)
        assert await task == 0
    assert "daemon.shutdown_timed_out" in [e["event"] for e in logs]


async def test_usr1_logs_the_status_view(tmp_path):
    from structlog.testing import capture_logs

    cfg = tmp_path / "web.cf"
    cfg.write_text("ok\n")
    d, _ = _daemon(cfg)
    task = await _started(d)
    with capture_logs() as logs:
        os.kill(os.getpid(), signal.SIGUSR1)
        await until(lambda: any(e["event"] == "daemon.status_dumped" for e in logs))
    dumped = next(e for e in logs if e["event"] == "daemon.status_dumped")
    assert dumped["snapshot"]["virtuals"] == [{"name": "tcp/192.0.2.10:80", "reals": 0}]
    d.request(Request.STOP)
    assert await task == 0


class Plugin(plugins.Plugin):
    def __init__(self) -> None:
        self.configs: list[Config] = []
        self.closed = False
        self.running = False

    async def run(self) -> None:
        self.running = True
        try:
            await asyncio.Event().wait()
        finally:
            self.running = False

    def reconfigure(self, config: Config) -> None:
        self.configs.append(config)

    async def aclose(self) -> None:
        self.closed = True


async def test_plugins_follow_reloads_and_are_closed(tmp_path):
    cfg = tmp_path / "web.cf"
    cfg.write_text("ok\n")
    plugin = Plugin()
    d, _ = _daemon(cfg, listeners=[plugin])
    assert plugin in d.engine.listeners  # type: ignore[attr-defined]
    task = await _started(d)
    assert plugin.running  # its own work runs in the daemon's task group
    assert await d.reload() is True
    assert plugin.configs == [d.config]
    cfg.write_text("broken\n")
    assert await d.reload() is False
    assert len(plugin.configs) == 1  # a refused config is never handed on
    d.request(Request.STOP)
    assert await task == 0
    assert plugin.closed
    assert not plugin.running
