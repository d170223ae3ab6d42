"""Logging setup (structlog over the stdlib) and the closed list of event names.

configure() picks the destination the way ldirectord's `logfile=` does (a path, or a syslog
facility) and the format by context: console on a terminal or with -d, JSON lines otherwise.
Every event name healthd logs is a constant here; nothing else decides where logs go.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import socket
import sys
from typing import Final, TextIO

import structlog
from structlog.typing import Processor

# --- event names (noun.verb_past or noun.state; checked by tests/unit/test_logs.py) --------
DAEMON_STARTED: Final = "daemon.started"
DAEMON_STOPPING: Final = "daemon.stopping"
DAEMON_STOPPED: Final = "daemon.stopped"
CONFIG_LOADED: Final = "config.loaded"
CONFIG_RELOAD_FAILED: Final = "config.reload_failed"
CONFIG_WARNING: Final = "config.warning"
ENGINE_STATE: Final = "engine.state_changed"
ENGINE_RELOADED: Final = "engine.reloaded"
CHECK_RESULT: Final = "check.result"
CHECK_LOCAL_ERROR: Final = "check.local_error"
CHECK_CRASHED: Final = "check.crashed"
CHECK_UNAVAILABLE: Final = "check.unavailable"
REAL_UP: Final = "real.up"
REAL_DOWN: Final = "real.down"
REAL_MAINTENANCE: Final = "real.maintenance"
FALLBACK_ON: Final = "fallback.on"
FALLBACK_OFF: Final = "fallback.off"
IPVS_OP_APPLIED: Final = "ipvs.op_applied"
IPVS_APPLY_FAILED: Final = "ipvs.apply_failed"
IPVS_DUMP_FAILED: Final = "ipvs.dump_failed"
IPVS_RESYNCED: Final = "ipvs.resynced"
IPVS_DRIFT_DETECTED: Final = "ipvs.drift_detected"
HOOK_RAN: Final = "hook.ran"
HOOK_FAILED: Final = "hook.failed"
LISTENER_FAILED: Final = "listener.failed"
MAINTENANCE_SCAN_FAILED: Final = "maintenance.scan_failed"
RLIMIT_RAISED: Final = "rlimit.raised"
RLIMIT_FAILED: Final = "rlimit.raise_failed"
SCHEDULER_RESIZED: Final = "scheduler.resized"
LOG_SYSLOG_FAILED: Final = "log.syslog_unavailable"
LOG_FILE_FAILED: Final = "log.file_unavailable"
LOOP_FALLBACK: Final = "loop.uvloop_unavailable"
# lifecycle (daemon.py, app.py, sdnotify.py, control.py)
CONFIG_CHANGED: Final = "config.changed"
DAEMON_STATUS: Final = "daemon.status_dumped"
DAEMON_FORCED_EXIT: Final = "daemon.exit_forced"
DAEMON_SHUTDOWN_TIMEOUT: Final = "daemon.shutdown_timed_out"
DAEMON_RELOADING: Final = "daemon.reloading"
DAEMON_CRASHED: Final = "daemon.crashed"
DAEMON_START_FAILED: Final = "daemon.start_failed"
SDNOTIFY_FAILED: Final = "sdnotify.send_failed"
WATCHDOG_STALLED: Final = "watchdog.stalled"
WATCHDOG_RESUMED: Final = "watchdog.resumed"
CONTROL_FAILED: Final = "control.request_failed"
CONTROL_REFUSED: Final = "control.peer_refused"
COMMANDS_USER: Final = "commands.user_set"
OVERRIDE_SET: Final = "override.set"
OVERRIDE_DRAINED: Final = "override.drained"
OVERRIDE_DROPPED: Final = "override.dropped"
STATE_UNREADABLE: Final = "state.unreadable"
STATE_WRITE_FAILED: Final = "state.write_failed"
HTTP_LISTENING: Final = "http.listening"
HTTP_LISTEN_KEPT: Final = "http.listen_unchanged_until_restart"
# clusters (routes/, syncd.py)
ROUTE_ANNOUNCED: Final = "route.announced"
ROUTE_WITHDRAWN: Final = "route.withdrawn"
ROUTE_FAILED: Final = "route.apply_failed"
SYNCD_STARTED: Final = "syncd.started"
SYNCD_STOPPED: Final = "syncd.stopped"
SYNCD_FAILED: Final = "syncd.apply_failed"

EVENTS: Final[frozenset[str]] = frozenset(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)

SYSLOG_FACILITIES: Final[frozenset[str]] = frozenset(logging.handlers.SysLogHandler.facility_names)

_ROOT = "healthd"

Logger = structlog.typing.FilteringBoundLogger


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _renderers(console: bool) -> list[Processor]:
    if console:
        return [structlog.dev.ConsoleRenderer(colors=False)]
    return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]


SYSLOG_SOCKET: Final = "/dev/log"


class _SyslogHandler(logging.handlers.SysLogHandler):
    """SysLogHandler that survives the syslog daemon going away and coming back.

    When the socket fails (syslog restarted, /dev/log gone), the stdlib handler prints a
    traceback on stderr for every record it cannot deliver. This one reconnects on each
    record, says once on stderr that syslog is unavailable (one line), drops the lines
    meanwhile, and says how many it dropped when a line gets through again.
    """

    def __init__(self, address: str, facility: int) -> None:
        self._sock: socket.socket | None = None
        self._kinds = [socket.SOCK_DGRAM, socket.SOCK_STREAM]  # the one that worked goes first
        self.lost = 0  # records dropped in the current outage
        self.down = False
        super().__init__(address=address, facility=facility)

    def createSocket(self) -> None:
        """Connect lazily, on the first record (the stdlib connects in __init__)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self._encode(record)
        except Exception:  # noqa: BLE001  (a handler never raises; stdlib reports it)
            self.handleError(record)
            return
        try:
            self._send(msg)
        except OSError as exc:
            self.lost += 1
            if not self.down:
                self.down = True
                detail = exc.strerror or str(exc)
                _say(f"syslog at {self.address} is unavailable ({detail}); dropping log lines")
            return
        if self.down:
            self.down = False
            lost, self.lost = self.lost, 0
            were = "line was" if lost == 1 else "lines were"
            _say(f"syslog at {self.address} is back; {lost} log {were} lost")

    def _encode(self, record: logging.LogRecord) -> bytes:
        text = self.ident + self.format(record) + ("\0" if self.append_nul else "")
        prio = self.encodePriority(self.facility, self.mapPriority(record.levelname))
        return f"<{prio}>{text}".encode()

    def _send(self, msg: bytes) -> None:
        """Send on the open socket; if that fails (or there is none), reconnect and resend."""
        if self._sock is not None:
            try:
                self._sock.send(msg)
            except OSError:
                self._drop_socket()
            else:
                return
        self._sock = self._connect()
        try:
            self._sock.send(msg)
        except OSError:
            self._drop_socket()
            raise

    def _connect(self) -> socket.socket:
        error: OSError | None = None
        for kind in self._kinds:
            sock = socket.socket(socket.AF_UNIX, kind)
            try:
                sock.connect(str(self.address))
            except OSError as exc:
                sock.close()
                error = error or exc
            else:
                self._kinds.sort(key=lambda k: k != kind)
                return sock
        assert error is not None
        raise error

    def _drop_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def close(self) -> None:
        with self.lock or contextlib.nullcontext():
            self._drop_socket()
        super().close()


def _say(line: str) -> None:
    """Write one line about the logging itself to stderr; never raise."""
    try:
        sys.stderr.write(f"healthd: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or gone
        pass


def _handler(
    debug: bool, logfile: str | None, console: bool, syslog_socket: str = SYSLOG_SOCKET
) -> tuple[logging.Handler, str | None]:
    """Return the stdlib handler for the chosen destination (ldirectord.md §11.1).

    The second item is None, or why `logfile` could not be used (stderr is used instead).
    """
    if debug or not logfile:
        stream: TextIO = sys.stderr if console else sys.stdout
        return logging.StreamHandler(stream), None
    if logfile.startswith("/"):
        # ldirectord opens the file per message so logrotate needs no postrotate; a
        # WatchedFileHandler reopens after rotation and gives the same guarantee.
        try:
            return logging.handlers.WatchedFileHandler(logfile, encoding="utf-8"), None
        except OSError as exc:
            return logging.StreamHandler(sys.stderr), exc.strerror or str(exc)
    facility = logging.handlers.SysLogHandler.facility_names.get(logfile)
    if facility is None:
        return logging.StreamHandler(sys.stderr), "unknown syslog facility"
    # no syslog at startup: stderr, with a warning; an outage later is _SyslogHandler's
    unreachable = _unreachable(syslog_socket)
    if unreachable is not None:
        return logging.StreamHandler(sys.stderr), unreachable
    return _SyslogHandler(syslog_socket, facility), None


def _unreachable(path: str) -> str | None:
    """Return why nothing listens on the unix socket at path (datagram or stream), or None."""
    reason = ""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_UNIX, kind) as probe:
            try:
                probe.connect(path)
            except OSError as exc:
                reason = exc.strerror or str(exc)
            else:
                return None
    return reason


def is_syslog(logfile: str | None) -> bool:
    """Return whether `logfile=` names a syslog facility rather than a file (no leading /)."""
    return bool(logfile) and not str(logfile).startswith("/")


def configure(
    debug: bool,
    logfile: str | None,
    json: bool | None = None,
    *,
    cache: bool = False,
    syslog_socket: str = SYSLOG_SOCKET,
) -> None:
    """Route structlog through one stdlib handler chosen from -d, `logfile=` and the terminal.

    debug: console format on stderr at debug level; `logfile` is ignored (as ldirectord -d).
    logfile: "/path" → JSON lines appended to that file; a facility ("local0") → syslog.
    json: None decides by whether stderr is a terminal; True/False forces the format on the
    standard streams. cache=True caches loggers on first use: a small saving in production
    that defeats structlog.testing.capture_logs, so it is off by default; the daemon turns it
    on (without it every call on a module-level logger rebuilds its bound logger, about three
    times the cost of a filtered-out debug call). syslog_socket is the local syslog daemon's
    socket.
    """
    if debug:
        console = True
    elif logfile:
        console = False
    else:
        console = sys.stderr.isatty() if json is None else not json
    handler, failed = _handler(debug, logfile, console, syslog_socket)
    if isinstance(handler, logging.handlers.SysLogHandler):
        renderers: list[Processor] = [
            structlog.processors.format_exc_info,
            structlog.processors.LogfmtRenderer(key_order=["event"], drop_missing=True),
        ]
        handler.ident = f"healthd[{os.getpid()}]: "
    else:
        renderers = _renderers(console)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
            foreign_pre_chain=_shared_processors(),
        )
    )
    level = logging.DEBUG if debug else logging.INFO
    root = logging.getLogger(_ROOT)
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    if cache:
        # production: no renderer shows a record's thread or process, so stdlib need not look
        # them up for each line (about 7 % of an info line's cost)
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=cache,
    )
    if failed is not None and is_syslog(logfile):
        get_logger().warning(LOG_SYSLOG_FAILED, path=syslog_socket, facility=logfile, detail=failed)
    elif failed is not None:
        get_logger().warning(LOG_FILE_FAILED, path=logfile, detail=failed)


def get_logger(name: str = _ROOT) -> Logger:
    """Return a structlog logger under healthd's stdlib logger tree."""
    logger: Logger = structlog.get_logger(name if name.startswith(_ROOT) else f"{_ROOT}.{name}")
    return logger
