"""Local demo real servers: aiohttp apps on 127.0.0.x serving ok.html, switchable to 500.

Each binds an ephemeral port on its own loopback address; nothing leaves the host.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from aiohttp import web

from healthd.errors import HealthdError


@dataclass
class Backend:
    """One real server; `failing` makes ok.html answer 500."""

    address: str
    port: int = 0
    failing: bool = False
    requests: int = 0
    _runner: web.AppRunner | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    async def _ok(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.failing:
            return web.Response(status=500, text="failing on purpose\n")
        return web.Response(text="ok\n")

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=f"real server {self.address}\n")

    async def start(self) -> None:
        """Bind an ephemeral port on the backend's address and serve."""
        app = web.Application()
        app.router.add_get("/ok.html", self._ok)
        app.router.add_get("/", self._index)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.address, 0))
        except OSError as exc:
            sock.close()
            raise HealthdError(
                f"cannot start the demo's real server on {self.address}: {exc.strerror or exc}"
            ) from exc
        self.port = sock.getsockname()[1]
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        """Stop serving and release the port."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def start_backends(addresses: list[str]) -> list[Backend]:
    """Start one backend per address; stop those already started if one fails."""
    started: list[Backend] = []
    try:
        for address in addresses:
            backend = Backend(address)
            await backend.start()
            started.append(backend)
    except BaseException:
        for backend in started:
            await backend.stop()
        raise
    return started
