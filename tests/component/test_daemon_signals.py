"""A second TERM while shutdown hangs ends the process at once, without a stale pid file."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from typing import IO

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from healthd import pidfile
    from healthd.daemon import Daemon
    from healthd.model import Config

    class HangingEngine:
        def __init__(self, config, driver, listeners):
            self.listeners = listeners
        async def run(self):
            for listener in self.listeners:
                await listener.on_state("running")
            await asyncio.Event().wait()
        async def reload(self, config):
            pass
        async def shutdown(self):
            print("stopping", flush=True)
            await asyncio.Event().wait()
        def snapshot(self):
            return {}

    pid_path, cfg = sys.argv[1], sys.argv[2]
    pidfile.write(pid_path)
    daemon = Daemon(Config(path=cfg), object(), engine_factory=HangingEngine,
                    pid_path=pid_path, on_ready=lambda: print("ready", flush=True))
    sys.exit(asyncio.run(daemon.run()))
    """
)


def _line(stream: IO[str], want: str) -> bool:
    """Read lines (unconfigured structlog prints to stdout too) until `want` or EOF."""
    return any(line == f"{want}\n" for line in stream)


def test_second_term_exits_at_once(tmp_path):
    pid_path = tmp_path / "ldirectord.x.pid"
    cfg = tmp_path / "x.cf"
    cfg.write_text("\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(pid_path), str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert _line(proc.stdout, "ready")
        assert pid_path.exists()
        proc.send_signal(signal.SIGTERM)
        assert _line(proc.stdout, "stopping")  # shutdown hangs here
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 1
        assert not pid_path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
