"""The daemon's lifecycle around the Engine: signals, reload, autoreload, sd_notify, shutdown.

Signal handlers only queue a request; one supervisor coroutine acts on them in order, so a
reload never races a stop. A broken configuration on reload is logged with every error and
the running one stays in force. The Engine owns health and the IPVS table; this module owns
the process: pid file removal, the control socket and what systemd is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from healthd import logs, pidfile, watchdog
from healthd.control import Command, ControlServer
from healthd.errors import ConfigErrors, HealthdError
from healthd.model import Config
from healthd.plugins import Plugin, Plugins
from healthd.sdnotify import Notifier

if TYPE_CHECKING:
    from healthd.ipvs.driver import IPVSDriver

log = logs.get_logger("healthd.daemon")

EXIT_FORCED = 1
EXIT_CRASHED = 1
SHUTDOWN_GRACE = 30.0  # seconds for probes to stop and cleanstop to finish


class Request(enum.Enum):
    """What a signal (or the config watcher) asks the supervisor to do."""

    RELOAD = "reload"  # SIGHUP
    AUTORELOAD = "autoreload"  # the file changed and autoreload=yes
    STOP = "stop"  # SIGTERM, SIGINT
    STATUS = "status"  # SIGUSR1


class EngineLike(Protocol):
    """What the daemon needs of healthd.engine.Engine."""

    async def run(self) -> None: ...
    async def reload(self, config: Config) -> None: ...
    async def shutdown(self) -> None: ...
    def snapshot(self) -> dict[str, object]: ...


EngineFactory = Callable[[Config, "IPVSDriver", Sequence[Plugin]], EngineLike]
Loader = Callable[[str], Config]


def default_engine(config: Config, driver: IPVSDriver, listeners: Sequence[Plugin]) -> EngineLike:
    """Return the real Engine (imported here so tests can run the daemon on a stub)."""
    from healthd.engine import Engine

    return Engine(config, driver, listeners=listeners)


def default_loader(path: str) -> Config:
    """Return the configuration at path, logging its warnings; raise ConfigErrors."""
    from healthd.config import format_errors, load_with_warnings

    config, warnings = load_with_warnings(path)
    for warning in warnings:
        log.warning(logs.CONFIG_WARNING, path=path, detail=format_errors([warning]))
    return config


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What autoreload compares: mtime and size first, the content digest when they move."""

    mtime_ns: int
    size: int
    digest: str


def fingerprint(path: str, previous: Fingerprint | None = None) -> Fingerprint | None:
    """Return the file's fingerprint (None if unreadable); reuse previous's digest if unchanged."""
    # ldirectord: check_cfgfile compares mtime, then an MD5 of the content (§9.15)
    try:
        st = os.stat(path)
        if previous is not None and (st.st_mtime_ns, st.st_size) == (
            previous.mtime_ns,
            previous.size,
        ):
            return previous
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None
    return Fingerprint(st.st_mtime_ns, st.st_size, digest)


def render_errors(errors: ConfigErrors) -> str:
    """Return every error rendered with its source line and caret."""
    from healthd.config import format_errors

    return format_errors(errors)


class _Listener(Plugin):
    """Plugin that tells the daemon about engine state changes."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    async def on_state(self, state: str) -> None:
        self._daemon.engine_state(state)


class Daemon:
    """Runs one Engine for one configuration until asked to stop."""

    def __init__(
        self,
        config: Config,
        driver: IPVSDriver,
        *,
        notifier: Notifier | None = None,
        control_path: str | None = None,
        pid_path: str | None = None,
        engine_factory: EngineFactory = default_engine,
        loader: Loader = default_loader,
        listeners: Sequence[Plugin] = (),
        grace: float = SHUTDOWN_GRACE,
        on_ready: Callable[[], None] | None = None,
        commands: Mapping[str, Command] | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier if notifier is not None else Notifier(None)
        self.pid_path = pid_path
        self.grace = grace
        self._on_ready = on_ready
        self._loader = loader
        self._requests: asyncio.Queue[Request] = asyncio.Queue()
        self._stopping = False
        self._ready = asyncio.Event()
        self._fingerprint = fingerprint(config.path)
        self.reloads = 0  # successful reloads, for status and tests
        self.reload_failures = 0  # reloads that kept the running config (metrics)
        self.loaded_at = time.time()  # when the running config was loaded (metrics)
        self.watch: watchdog.Watch | None = None  # set when systemd wants watchdog pings
        self._plugins = Plugins(listeners)  # alerts, monitorfile: run, reconfigured, closed here
        self.engine = engine_factory(config, driver, [_Listener(self), *listeners])
        self._control = (
            ControlServer(control_path, self.snapshot, commands)
            if control_path is not None
            else None
        )

    # --- requests ---------------------------------------------------------------------

    def request(self, what: Request) -> None:
        """Queue a request for the supervisor (safe to call from a signal handler)."""
        if what is Request.STOP and self._stopping:
            self._force_exit()
        if what is Request.STOP:
            self._stopping = True
        self._requests.put_nowait(what)

    def _force_exit(self) -> None:
        # a second TERM during shutdown: leave at once, as ldirectord's "Exit Handler
        # Repeatedly Called" does, but without leaving our pid file behind
        log.warning(logs.DAEMON_FORCED_EXIT)
        if self.pid_path is not None:
            pidfile.remove(self.pid_path)
        os._exit(EXIT_FORCED)

    def engine_state(self, state: str) -> None:
        """Note an engine state; the first `running` means the first reconcile is done."""
        if state == "running" and not self._ready.is_set():
            self._ready.set()

    def snapshot(self) -> dict[str, object]:
        """Return the engine's status view plus the daemon's own facts."""
        view = dict(self.engine.snapshot())
        view["daemon"] = {
            "pid": os.getpid(),
            "config": self.config.path,
            "reloads": self.reloads,
            "ready": self._ready.is_set(),
            "execute": list(self.config.execute),  # for `status` to ask each instance
            "watchdog": None if self.watch is None else (self.watch.reason or "ok"),
        }
        view.update(self._plugins.view())  # the cluster plugins: routes, sync daemon
        return view

    # --- lifecycle --------------------------------------------------------------------

    async def run(self) -> int:
        """Run until TERM/INT (or STOP); return the exit code (0 after a clean stop)."""
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        try:
            if self._control is not None:
                await self._control.start()
            await self._plugins.start()  # the operator's server binds: a failure stops the start
            self.notifier.status("starting")
            crash: BaseException | None = None
            try:
                await self._serve()
            except* Exception as group:  # noqa: BLE001 - the process boundary: log, exit 1
                crash = group.exceptions[0]
            if crash is not None:
                # a bug in the engine: no cleanstop on unknown state; systemd restarts us and
                # the new process adopts the table (ldirectord dies without cleanup here too)
                log.critical(logs.DAEMON_CRASHED, exc_info=crash)
                self.notifier.status("crashed")
                return EXIT_CRASHED
            await self._shutdown()
        finally:
            await self._close_plugins()
            self._remove_signals(loop)
            if self._control is not None:
                await self._control.close()
            if self.pid_path is not None:
                pidfile.remove(self.pid_path)
            log.info(logs.DAEMON_STOPPED, config=self.config.path)
            self.notifier.close()
        return 0

    async def _serve(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self._run_engine(), name="engine"),
                tg.create_task(self._announce_ready(), name="ready"),
                tg.create_task(self._watchdog(), name="watchdog"),
                tg.create_task(self._watch_config(), name="autoreload"),
            ]
            # plugins with work of their own (alert delivery) run in the same task group
            for plugin in self._plugins.workers:
                tasks.append(tg.create_task(plugin.run(), name=type(plugin).__name__))
            await self._supervise()
            for task in tasks:
                task.cancel()

    async def _run_engine(self) -> None:
        await self.engine.run()
        # the engine only returns when it has nothing to do; keep the process alive anyway
        await asyncio.Event().wait()

    async def _announce_ready(self) -> None:
        await self._ready.wait()
        virtuals = len(self.config.virtuals)
        log.info(logs.DAEMON_STARTED, config=self.config.path, pid=os.getpid(), virtuals=virtuals)
        self.notifier.ready(status=f"running: {virtuals} virtual services")
        if self._on_ready is not None:
            self._on_ready()
        await self._instances(self.config.execute, "start")

    async def _supervise(self) -> None:
        while True:
            what = await self._requests.get()
            if what is Request.STOP:
                return
            if what is Request.STATUS:
                log.info(logs.DAEMON_STATUS, snapshot=self.snapshot())
            else:
                await self.reload(automatic=what is Request.AUTORELOAD)

    async def _shutdown(self) -> None:
        log.info(logs.DAEMON_STOPPING, config=self.config.path)
        self.notifier.stopping()
        self.notifier.status("stopping")
        await self._instances(self.config.execute, "stop")
        finished = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.grace):
                await self.engine.shutdown()
                finished = True
        if not finished:
            log.error(logs.DAEMON_SHUTDOWN_TIMEOUT, grace=self.grace)

    # --- reload -----------------------------------------------------------------------

    async def reload(self, *, automatic: bool = False) -> bool:
        """Load the config again; apply it if valid, else keep the running one. Return success."""
        path = self.config.path
        log.info(logs.DAEMON_RELOADING, path=path, trigger="autoreload" if automatic else "signal")
        self.notifier.reloading()
        seen = await asyncio.to_thread(fingerprint, path)
        try:
            new = await asyncio.to_thread(self._loader, path)
        except ConfigErrors as errs:
            self._reload_failed(path, seen, errs.summary(), render_errors(errs))
            return False
        except HealthdError as exc:  # the file vanished, or cannot be read
            self._reload_failed(path, seen, str(exc), str(exc))
            return False
        from healthd import privileges

        try:
            privileges.apply(new.command_user)  # before any check of the new config runs
        except privileges.PrivilegeError as exc:
            self._reload_failed(path, seen, str(exc), str(exc))
            return False
        await self.engine.reload(new)
        self._plugins.reconfigure(new)
        old = self.config
        self.config, self._fingerprint = new, seen
        await self._instances([x for x in old.execute if x not in new.execute], "stop")
        await self._instances([x for x in new.execute if x in old.execute], "reload")
        await self._instances([x for x in new.execute if x not in old.execute], "start")
        self.reloads += 1
        self.loaded_at = time.time()
        log.info(logs.CONFIG_LOADED, path=path, virtuals=len(new.virtuals), reload=True)
        self.notifier.ready(status=f"running: {len(new.virtuals)} virtual services")
        if new.callback:
            await self._callback(new.callback, path)
        return True

    def _reload_failed(self, path: str, seen: Fingerprint | None, summary: str, text: str) -> None:
        # ldirectord loses its real servers here (§9.10); healthd keeps the running config
        self._fingerprint = seen  # do not retry the same broken file every interval
        self.reload_failures += 1
        log.error(logs.CONFIG_RELOAD_FAILED, path=path, summary=summary, errors=text)
        self.notifier.ready(status=f"reload failed ({summary}); running the previous config")

    async def _instances(self, names: Sequence[str], verb: str) -> None:
        """Run `healthd NAME VERB` for execute= instances, as ldirectord runs itself (§9.10)."""
        from healthd.hooks import run_hook

        for name in names:
            argv = [sys.executable, "-m", "healthd", name, verb]
            # an instance is healthd itself, with the daemon's rights, not command_user=
            result = await run_hook("execute", argv, as_command_user=False)
            if verb == "reload" and not result.ok:
                # ldirectord: a failed reload of a kept instance starts it instead
                await run_hook("execute", [*argv[:-1], "start"], as_command_user=False)

    async def _callback(self, command: str, path: str) -> None:
        from healthd.hooks import run_callback

        await run_callback(command, path)

    async def _close_plugins(self) -> None:
        """Let plugins finish (alerts deliver what is queued, within their own grace)."""
        await self._plugins.aclose()

    # --- background tasks -------------------------------------------------------------

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog every WatchdogSec/2 while the engine makes progress."""
        interval = self.notifier.watchdog_interval
        if interval is None:
            return
        # an engine without progress counters (a test stand-in) is judged by its loop alone
        progress = getattr(self.engine, "progress", None)
        if isinstance(progress, watchdog.Progress):
            self.watch = watchdog.Watch(progress, interval, asyncio.get_running_loop().time())
        await watchdog.run(self.notifier, self.watch, interval)

    async def _watch_config(self) -> None:
        """Poll the file every checkinterval; reload on change (autoreload) or run callback."""
        while True:
            await asyncio.sleep(max(self.config.checkinterval, 0.05))
            cfg = self.config
            if not (cfg.autoreload or cfg.callback):
                continue
            seen = await asyncio.to_thread(fingerprint, cfg.path, self._fingerprint)
            if seen is None or self._fingerprint is None or seen.digest == self._fingerprint.digest:
                self._fingerprint = seen or self._fingerprint
                continue
            self._fingerprint = seen
            action = "reload" if cfg.autoreload else "ignore"
            log.info(logs.CONFIG_CHANGED, path=cfg.path, action=action)
            if cfg.autoreload:
                self.request(Request.AUTORELOAD)
            elif cfg.callback:
                # ldirectord: callback runs on a change even without autoreload (§9.15)
                await self._callback(cfg.callback, cfg.path)

    # --- signals ----------------------------------------------------------------------

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_signal_handler(signal.SIGTERM, self.request, Request.STOP)
        loop.add_signal_handler(signal.SIGINT, self.request, Request.STOP)
        loop.add_signal_handler(signal.SIGHUP, self.request, Request.RELOAD)
        loop.add_signal_handler(signal.SIGUSR1, self.request, Request.STATUS)

    def _remove_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
