"""The operator's server as a plugin: the counting driver, the Stats plugin, the WebServer.

Built in healthd.app before the daemon (its driver and its Stats plugin go in), attached to
the daemon once it exists, started by the daemon before it serves (an address in use stops
the start) and closed with the other plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from healthd import logs
from healthd.ipvs.counting import CountingDriver
from healthd.plugins import Plugin
from healthd.web.stats import Stats

if TYPE_CHECKING:
    from healthd.daemon import Daemon
    from healthd.ipvs.driver import IPVSDriver
    from healthd.model import Config, IPAddress
    from healthd.web.server import WebServer

log = logs.get_logger("healthd.web")


class Operator(Plugin):
    """Serves /metrics, the status page and /api/v1 for one daemon on http_listen=."""

    def __init__(self, driver: IPVSDriver, listen: tuple[IPAddress, int]) -> None:
        self.driver = CountingDriver(driver)
        self.listen = listen
        self.daemon: Daemon | None = None
        self.stats = Stats(self._results)
        self.server: WebServer | None = None
        self.url = ""

    def _results(self) -> int:
        return self.daemon.engine.progress.results if self.daemon is not None else 0

    def attach(self, daemon: Daemon) -> None:
        """Serve this daemon (made after the operator: the operator's driver goes into it)."""
        self.daemon = daemon

    async def start(self) -> None:
        """Listen on http_listen=; HealthdError (one line) if the address cannot be had."""
        from healthd.engine import Engine
        from healthd.web.metrics import Metrics
        from healthd.web.server import WebServer

        daemon = self.daemon
        if daemon is None or not isinstance(daemon.engine, Engine):
            return  # not attached to a daemon with a real engine: nothing to serve
        metrics = Metrics(daemon.engine, self.stats, self.driver, daemon)
        self.server = WebServer(daemon.snapshot, self.stats, metrics)
        self.url = await self.server.start(*self.listen)

    def reconfigure(self, config: Config) -> None:
        """A reload keeps the server where it is: http_listen= takes effect at restart."""
        if self.server is not None and config.http_listen != self.listen:
            log.warning(logs.HTTP_LISTEN_KEPT, listen=str(config.http_listen), url=self.url)

    async def aclose(self) -> None:
        if self.server is not None:
            await self.server.aclose()
            self.server = None
