"""ldirectord's verbs (start, stop, restart, try-restart, reload, status) and the foreground run.

Messages and exit codes are ldirectord's (ldirectord.md §1.3-§1.4): 0 running/success, 1 not
found or stale, 2 configuration error, 3 stopped. Unlike ldirectord, stop and status never
load the configuration (status reads only its execute= lines, and only when the daemon does not
answer), so a broken file never hides or detaches a running daemon.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from healthd import control, loop, pidfile
from healthd.errors import ConfigErrors, HealthdError
from healthd.model import Config

if TYPE_CHECKING:
    from healthd.ipvs.driver import IPVSDriver

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_CONFIG = 2
EXIT_STOPPED = 3
DRIVER_ENV = "HEALTHD_DRIVER"  # testing and demo only: "fake" runs on the in-memory table
STOP_WAIT = 60.0  # seconds `stop` waits for the daemon to exit
START_WAIT = 60.0  # seconds `start` waits for the daemon to come up
START_FAILED = "daemon.start_failed"  # logs.DAEMON_START_FAILED; logs is imported late here


@dataclass(frozen=True, slots=True)
class Instance:
    """One configuration's identity: names, pid file and control socket."""

    config_arg: str | None
    path: str  # the configuration as ldirectord's lookup found it (used in messages)

    @property
    def pid_path(self) -> str:
        return pidfile.pidfile_path(self.config_arg)

    @property
    def control_path(self) -> str:
        return control.socket_path(self.path)


def _err(text: str) -> None:
    print(text.rstrip("\n"), file=sys.stderr, flush=True)


def _out(text: str) -> None:
    print(text.rstrip("\n"), flush=True)


def locate(ns: argparse.Namespace) -> Instance | None:
    """Return the instance for the config named on the command line, or None (message shown)."""
    from healthd.config import lookup

    try:
        path = lookup(ns.config_arg)
    except (HealthdError, OSError) as exc:
        _err(f"healthd: {exc}")
        return None
    return Instance(ns.config_arg, path)


def load(inst: Instance) -> Config | None:
    """Return the parsed configuration, or None after printing every error."""
    from healthd.config import format_errors, load_with_warnings

    try:
        config, warnings = load_with_warnings(inst.path)
    except ConfigErrors as errs:
        _err(format_errors(errs))
        return None
    if warnings:
        _err(format_errors(warnings))
    return config


def find(inst: Instance) -> pidfile.PidStatus:
    """Return the daemon's state: its pid file, else a control socket that answers."""
    st = pidfile.check(inst.pid_path)
    if st.state is not pidfile.State.STOPPED:
        return st
    # a daemon run by systemd may have no pid file (read-only /run); its socket still answers
    with contextlib.suppress(control.ControlError):
        info = control.query(inst.control_path, timeout=1.0).get("daemon")
        pid = info.get("pid") if isinstance(info, dict) else None
        if isinstance(pid, int) and pidfile.cmdline(pid) is not None:
            return pidfile.PidStatus(pidfile.State.RUNNING, inst.pid_path, pid)
    return st


async def open_driver() -> IPVSDriver:
    """Return the kernel driver, or the in-memory one when HEALTHD_DRIVER=fake (tests, demo)."""
    kind = os.environ.get(DRIVER_ENV, "netlink")
    if kind == "fake":
        from healthd.ipvs.fake import FakeDriver

        return FakeDriver()
    if kind != "netlink":
        raise HealthdError(f"{DRIVER_ENV}={kind!r}: expected 'netlink' or 'fake'")
    from healthd.ipvs.netlink import NetlinkDriver

    driver = NetlinkDriver()
    try:
        await driver.dump()  # fail here, with the driver's one-line reason, rather than later
    except HealthdError:
        await driver.aclose()
        raise
    return driver


async def serve(
    inst: Instance,
    config: Config,
    *,
    pid_path: str | None,
    ready_fd: int | None,
    debug: bool = False,
) -> int:
    """Set up logging, open the driver and run the daemon until it stops; return the exit code."""
    from healthd import heap

    try:
        _configure_logs(config, debug)
    except OSError as exc:
        _report_failure(ready_fd, f"cannot open {config.logfile}: {exc.strerror}", logged=False)
        return EXIT_FAIL
    try:
        driver = await open_driver()
    except HealthdError as exc:
        _report_failure(ready_fd, str(exc))
        return EXIT_FAIL
    heap.tune()
    try:
        return await _run_daemon(inst, config, driver, pid_path, ready_fd)
    except HealthdError as exc:
        _report_failure(ready_fd, str(exc))
        return EXIT_FAIL
    finally:
        await driver.aclose()


async def _run_daemon(
    inst: Instance, config: Config, driver: IPVSDriver, pid_path: str | None, ready_fd: int | None
) -> int:
    """Build the daemon with its plugins, start the HTTP server if configured, and run it."""
    from healthd import heap, statefile
    from healthd.alerts import EmailAlerts
    from healthd.daemon import Daemon
    from healthd.engine import Engine
    from healthd.monitor import MonitorFile
    from healthd.runtime import Runtime
    from healthd.sdnotify import Notifier

    runtime = Runtime(statefile.path_for(config))
    plugins: list[object] = [EmailAlerts(config), MonitorFile(), heap.Settle(), runtime]
    operator = None
    if config.http_listen is not None:
        from healthd.web.operator import Operator  # aiohttp only when configured

        operator = Operator(driver)
        driver, plugins = operator.driver, [*plugins, operator.stats, operator]
    daemon = Daemon(
        config,
        driver,
        listeners=plugins,
        notifier=Notifier.from_env(),
        control_path=inst.control_path,
        pid_path=pid_path,
        on_ready=(lambda: _report_ready(ready_fd)) if ready_fd is not None else None,
        commands={"ctl": runtime.handle},
    )
    engine = daemon.engine
    assert isinstance(engine, Engine)
    runtime.attach(engine)
    if operator is None or config.http_listen is None:
        return await daemon.run()
    await operator.start(daemon, engine, *config.http_listen)
    try:
        return await daemon.run()
    finally:
        await operator.aclose()


def _report_ready(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(fd, b"ready\n")
            os.close(fd)


def _report_failure(fd: int | None, message: str, *, logged: bool = True) -> None:
    from healthd import logs

    if logged:
        logs.get_logger("healthd.daemon").error(START_FAILED, detail=message)
    _err(f"healthd: {message}")
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(fd, f"error {message}\n".encode())


def _configure_logs(config: Config, debug: bool) -> None:
    from healthd import logs

    # ldirectord: -d and supervised=yes log to the standard streams, not to logfile=
    # cache=True: loggers are built once (production only: it defeats capture_logs in tests)
    logs.configure(debug, None if debug or config.supervised else config.logfile, cache=True)


def _foreground(inst: Instance, config: Config, debug: bool) -> int:
    """Run in the foreground; a pid file unless -d, supervised=yes or under systemd."""
    # systemd tracks the main pid itself and keeps /run read-only (ProtectSystem=strict);
    # status and stop then find the daemon through its control socket
    under_systemd = bool(os.environ.get("NOTIFY_SOCKET"))
    # ldirectord: no pid file with -d or supervised=yes (l.1088-1097)
    pid_path = None if debug or under_systemd or config.supervised else inst.pid_path
    if pid_path is not None:
        try:
            pidfile.write(pid_path)
        except OSError as exc:
            # ProtectSystem=strict keeps /run read-only; status then asks the control socket
            _err(f"healthd: cannot write pid file {pid_path}: {exc.strerror}")
            pid_path = None
    try:
        return loop.run(serve(inst, config, pid_path=pid_path, ready_fd=None, debug=debug))
    finally:
        if pid_path is not None:
            pidfile.remove(pid_path)


def _prepare(ns: argparse.Namespace) -> tuple[Instance, Config] | int:
    """Return the instance and its loaded config, or the exit code that says why not."""
    if not ns.debug:
        pidfile.ensure_marker()  # re-execs so the cmdline carries "ldirectord"
    inst = locate(ns)
    if inst is None:
        return EXIT_FAIL
    config = load(inst)
    if config is None:
        return EXIT_CONFIG
    return inst, config


def run(ns: argparse.Namespace) -> int:
    """`healthd [-d] -c FILE`: run in the foreground (systemd Type=notify)."""
    prepared = _prepare(ns)
    if isinstance(prepared, int):
        return prepared
    inst, config = prepared
    st = find(inst)
    if st.state is pidfile.State.RUNNING:
        _err(f"ldirectord for {inst.path} is already running with pid: {st.pid}")
        return EXIT_FAIL
    return _foreground(inst, config, ns.debug)


def _daemonize(inst: Instance, config: Config) -> int:
    """Double-fork, setsid, chdir /, stdio to /dev/null; wait for the grandchild to be ready."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked processes
        os.close(r)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        os._exit(_grandchild(inst, config, w))
    os.close(w)
    os.waitpid(child, 0)
    return _await_ready(r)


def _grandchild(inst: Instance, config: Config, ready_fd: int) -> int:  # pragma: no cover
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    # keep none of the launcher's descriptors: a process started on uvloop inherits more
    # than its stdio, and an execute= hook running `start` waits for its pipe to close
    os.closerange(3, ready_fd)
    os.closerange(ready_fd + 1, os.sysconf("SC_OPEN_MAX"))
    try:
        pidfile.write(inst.pid_path)
    except OSError as exc:
        _report_failure(ready_fd, f"Can not open {inst.pid_path}: {exc.strerror}")
        return EXIT_FAIL
    try:
        return loop.run(serve(inst, config, pid_path=inst.pid_path, ready_fd=ready_fd))
    finally:
        pidfile.remove(inst.pid_path)


def _await_ready(fd: int) -> int:
    """Read the grandchild's first report: `ready`, `error MESSAGE`, or nothing (it died)."""
    data = b""
    deadline = time.monotonic() + START_WAIT
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while b"\n" not in data and (left := deadline - time.monotonic()) > 0:
            if not select.select([pipe], [], [], left)[0]:
                break
            chunk = pipe.read(4096)
            if not chunk:
                break
            data += chunk
    line = data.split(b"\n", 1)[0].decode(errors="replace")
    if line == "ready":
        return EXIT_OK
    if line.startswith("error "):
        _err(f"healthd: {line[6:]}")
    else:
        _err("healthd: the daemon did not start (see the log)")
    return EXIT_FAIL


def _start(inst: Instance, config: Config, debug: bool) -> int:
    st = find(inst)
    if st.state is pidfile.State.RUNNING:
        return EXIT_OK  # ldirectord: start while running prints nothing and exits 0
    if debug or config.supervised:
        return _foreground(inst, config, debug)  # ldirectord: supervised=yes stays in front
    if not os.access(os.path.dirname(inst.pid_path) or ".", os.W_OK):
        _err(f"Can not open {inst.pid_path}: permission denied")
        return EXIT_FAIL
    return _daemonize(inst, config)


def start(ns: argparse.Namespace) -> int:
    """`start`: daemonize and write the pid file; exit 0 at once if already running."""
    prepared = _prepare(ns)
    if isinstance(prepared, int):
        return prepared
    inst, config = prepared
    return _start(inst, config, ns.debug)


def _signal(pid: int, sig: signal.Signals) -> bool:
    """Send sig to pid; a pid already gone counts as sent. Say why and return False if not."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        _err(f"healthd: cannot send {sig.name} to pid {pid}: {exc.strerror}")
        return False
    return True


def _terminate(inst: Instance) -> tuple[int, bool]:
    """TERM the daemon and wait for it; return stop's exit code and whether it is gone."""
    st = find(inst)
    if st.state is pidfile.State.RUNNING and st.pid is not None:
        if not _signal(st.pid, signal.SIGTERM):
            return EXIT_FAIL, False
        # ldirectord returns at once; waiting lets Pacemaker and restart rely on "stopped"
        if not pidfile.wait_gone(st.pid, STOP_WAIT):
            _err(f"healthd: pid {st.pid} still running {STOP_WAIT:g}s after TERM")
            return EXIT_OK, False  # stop exits 0 here, as ldirectord's
    return EXIT_OK, True


def stop(ns: argparse.Namespace) -> int:
    """`stop`: TERM the daemon and wait (bounded) for it to exit; exit 0 unless TERM is refused."""
    inst = locate(ns)
    return EXIT_FAIL if inst is None else _terminate(inst)[0]


def restart(ns: argparse.Namespace) -> int:
    """`restart`: check the configuration first, then stop and start."""
    prepared = _prepare(ns)  # a broken file leaves the running daemon alone
    if isinstance(prepared, int):
        return prepared
    inst, config = prepared
    if not _terminate(inst)[1]:
        # the old daemon was not told to stop, or outlived STOP_WAIT: start would find it
        # running and exit 0 with the old configuration still in force
        _err(f"healthd: not restarted: the old daemon for {inst.path} is still running")
        return EXIT_FAIL
    return _start(inst, config, ns.debug)


def try_restart(ns: argparse.Namespace) -> int:
    """`try-restart`: restart only if running; exit 0 when stopped."""
    inst = locate(ns)
    if inst is None:
        return EXIT_FAIL
    if find(inst).state is not pidfile.State.RUNNING:
        return EXIT_OK
    return restart(ns)


def reload(ns: argparse.Namespace) -> int:
    """`reload`/`force-reload`: check the configuration, then HUP the daemon."""
    inst = locate(ns)
    if inst is None:
        return EXIT_FAIL
    st = find(inst)
    if st.state is not pidfile.State.RUNNING or st.pid is None:
        _out(f"ldirectord is stopped for {inst.path}")
        return EXIT_FAIL
    if load(inst) is None:
        return EXIT_CONFIG  # the daemon would refuse it too; it keeps running unchanged
    return EXIT_OK if _signal(st.pid, signal.SIGHUP) else EXIT_FAIL


def status(ns: argparse.Namespace) -> int:
    """`status`: ldirectord's lines and exit codes, for the daemon and its execute= instances."""
    from healthd.commands.status import status as report

    return report(ns)
