"""The aiohttp server behind `http_listen=`: `/` (status page), `/metrics`, `/api/v1/...`.

Read-only: every route is a GET (aiohttp answers 405 to anything else). A listen address
that is in use or not permitted is a HealthdError with one line, raised by `start`, so the
daemon does not start (or, on reload, keeps the server it has).
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from checks.base import host_text
from healthd import logs
from healthd.errors import HealthdError
from healthd.web import page
from healthd.web.metrics import CONTENT_TYPE, Metrics
from healthd.web.stats import Stats

if TYPE_CHECKING:
    from healthd.model import IPAddress

log = logs.get_logger("healthd.web")

Snapshot = Callable[[], Mapping[str, object]]
REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
    errno.EADDRNOTAVAIL: "the address is not on this host",
}


def url(address: IPAddress, port: int) -> str:
    """Return the server's base URL (IPv6 in brackets)."""
    return f"http://{host_text(address)}:{port}/"


class WebServer:
    """Serves the operator's views of one daemon on one address."""

    def __init__(self, snapshot: Snapshot, stats: Stats, metrics: Metrics) -> None:
        self._snapshot = snapshot
        self._stats = stats
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        """Return the application (also for tests with aiohttp's test client)."""
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/metrics", self._scrape)
        app.router.add_get("/api/v1/status", self._status)
        app.router.add_get("/api/v1/virtuals", self._virtuals)
        app.router.add_get("/api/v1/transitions", self._transitions)
        return app

    async def start(self, address: IPAddress, port: int) -> str:
        """Listen on address:port; return the URL; raise HealthdError (one line) if not."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, str(address), port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            reason = REASONS.get(exc.errno or 0, exc.strerror or str(exc))
            where = f"{host_text(address)}:{port}"
            raise HealthdError(f"cannot listen on {where} (http_listen): {reason}") from exc
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else port
        base = url(address, self.port)
        log.info(logs.HTTP_LISTENING, url=base)
        return base

    async def aclose(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- routes ---------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        text = page.render(self._snapshot(), list(self._stats.recent))
        return web.Response(text=text, content_type="text/html", charset="utf-8")

    async def _scrape(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _status(self, request: web.Request) -> web.Response:
        return _json(self._status_view())

    async def _virtuals(self, request: web.Request) -> web.Response:
        return _json(self._snapshot().get("virtuals", []))

    async def _transitions(self, request: web.Request) -> web.Response:
        rows = [
            {"at": c.at, "virtual": c.virtual, "real": c.real, "up": c.up, "reason": c.reason}
            for c in self._stats.recent
        ]
        return _json(rows)

    def _status_view(self) -> dict[str, object]:
        """Return what `healthd status --format json` shows for this daemon (no instances)."""
        snapshot = dict(self._snapshot())
        daemon = snapshot.get("daemon")
        pid = daemon.get("pid") if isinstance(daemon, Mapping) else None
        return {"config": snapshot.get("config"), "status": "running", "pid": pid, **snapshot}


def _json(data: object) -> web.Response:
    return web.Response(
        text=json.dumps(data, indent=2, default=str) + "\n", content_type="application/json"
    )
