"""Helpers shared by the system tests: run `healthd` as a user does, wait for a state."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEADLINE = 15.0  # seconds any awaited state may take (a daemon coming up or going)


def healthd(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m healthd ARGS` and return its exit code and output."""
    return subprocess.run(
        [sys.executable, "-m", "healthd", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def wait_for(what: Callable[[], object], deadline: float = DEADLINE) -> object:
    """Return the first true value of what(); fail once the deadline has passed."""
    end = time.monotonic() + deadline
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("state not reached before the deadline")
        time.sleep(0.1)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # dozens of checks connect at once


class Backend:
    """An HTTP server on 127.0.0.1 whose /ok.html answers "ok", or 500 when failing.

    `delay` seconds pass before each answer (0 by default): a slow real, many checks in
    flight at once.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.failing = False
        self.delay = delay
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if backend.delay:
                    time.sleep(backend.delay)
                code, body = (500, b"broken") if backend.failing else (200, b"ok")
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
