"""The composition root: a loaded configuration and its paths in, a running daemon out.

Chooses the IPVS driver (the kernel's, or the in-memory one for tests and the demo), sets up
logging, tunes the collector, wires the plugins (email alerts, the monitor file, the heap
settling) and the systemd notifier into one Daemon, and runs it until it stops. The verbs
(healthd.commands.*) decide whether and how to run; this decides what runs.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from healthd.commands.common import EXIT_FAIL, Instance, err
from healthd.errors import HealthdError

if TYPE_CHECKING:
    from healthd.daemon import Daemon
    from healthd.ipvs.driver import IPVSDriver
    from healthd.model import Config

DRIVER_ENV = "HEALTHD_DRIVER"  # testing and demo only: "fake" runs on the in-memory table


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


def build(
    inst: Instance,
    config: Config,
    driver: IPVSDriver,
    *,
    pid_path: str | None,
    ready_fd: int | None,
) -> Daemon:
    """Return the daemon for `config` on `driver`, with the plugins and the notifier."""
    from healthd import statefile
    from healthd.alerts import EmailAlerts
    from healthd.daemon import Daemon
    from healthd.engine import Engine
    from healthd.monitor import MonitorFile
    from healthd.plugins import Plugin, Settle
    from healthd.routes.announcer import Announcer
    from healthd.runtime import Runtime
    from healthd.sdnotify import Notifier
    from healthd.syncd import SyncdControl

    runtime = Runtime(statefile.path_for(config))
    announcer = Announcer(config)  # opens rtnetlink only if a virtual announces
    syncd = SyncdControl(config, driver)  # the raw driver: the counting one has no daemons
    cluster: list[Plugin] = [announcer, syncd]
    plugins: list[Plugin] = [EmailAlerts(config), MonitorFile(), Settle(), runtime, *cluster]
    operator = None
    if config.http_listen is not None:
        from healthd.web.operator import Operator  # aiohttp only when configured

        operator = Operator(driver, config.http_listen, cluster=(announcer, syncd))
        driver, plugins = operator.driver, [*plugins, operator.stats, operator]
    daemon = Daemon(
        config,
        driver,
        listeners=plugins,
        notifier=Notifier.from_env(),
        control_path=inst.control_path,
        pid_path=pid_path,
        on_ready=(lambda: report_ready(ready_fd)) if ready_fd is not None else None,
        commands={"ctl": runtime.handle},
    )
    engine = daemon.engine
    assert isinstance(engine, Engine)  # the default factory: the one engine app builds
    runtime.attach(engine)
    if operator is not None:
        operator.attach(daemon)
    return daemon


async def serve(
    inst: Instance,
    config: Config,
    *,
    pid_path: str | None,
    ready_fd: int | None,
    debug: bool = False,
) -> int:
    """Set up logging, open the driver and run the daemon until it stops; return the exit code."""
    from healthd import heap, logs, privileges

    try:
        configure_logs(config, debug)
    except OSError as exc:
        report_failure(ready_fd, f"cannot open {config.logfile}: {exc.strerror}", logged=False)
        return EXIT_FAIL
    try:
        driver = await open_driver()
    except HealthdError as exc:
        report_failure(ready_fd, str(exc))
        return EXIT_FAIL
    heap.tune()
    try:
        run_as = privileges.apply(config.command_user)
        logs.get_logger("healthd.app").info(
            logs.COMMANDS_USER, user=config.command_user or "default", run_as=str(run_as)
        )
        daemon = build(inst, config, driver, pid_path=pid_path, ready_fd=ready_fd)
        return await daemon.run()
    except HealthdError as exc:
        report_failure(ready_fd, str(exc))
        return EXIT_FAIL
    finally:
        await driver.aclose()


def report_ready(fd: int | None) -> None:
    """Tell the waiting `start` that the daemon is up."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(fd, b"ready\n")
            os.close(fd)


def report_failure(fd: int | None, message: str, *, logged: bool = True) -> None:
    """Log and print why the daemon did not start; tell the waiting `start`, if any."""
    from healthd import logs

    if logged:
        logs.get_logger("healthd.daemon").error(logs.DAEMON_START_FAILED, detail=message)
    err(f"healthd: {message}")
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(fd, f"error {message}\n".encode())


def configure_logs(config: Config, debug: bool) -> None:
    """Send logs where ldirectord would, for this configuration and -d."""
    from healthd import logs

    # ldirectord: -d and supervised=yes log to the standard streams, not to logfile=
    # cache=True: loggers are built once (production only: it defeats capture_logs in tests)
    logs.configure(debug, None if debug or config.supervised else config.logfile, cache=True)
