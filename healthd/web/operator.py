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
    from collections.abc import Sequence

    from healthd.daemon import Daemon
    from healthd.engine import Engine
    from healthd.ipvs.driver import IPVSDriver
    from healthd.model import Config, IPAddress
    from healthd.web.server import WebServer

log = logs.get_logger("healthd.web")


class Operator(Plugin):
    """Serves /metrics, the status page and /api/v1 for one daemon on http_listen=."""

    def __init__(
        self, driver: IPVSDriver, listen: tuple[IPAddress, int], *, cluster: Sequence[Plugin] = ()
    ) -> None:
        self.driver = CountingDriver(driver)
        self.cluster = tuple(cluster)  # the announcer and the sync daemon's plugin, for metrics
        self.listen = listen
        self.daemon: Daemon | None = None
        self.engine: Engine | None = None
        self.stats = Stats(self._results)
        self.server: WebServer | None = None
        self.url = ""

    def _results(self) -> int:
        return self.engine.progress.results if self.engine is not None else 0

    def attach(self, daemon: Daemon | None) -> None:
        """Serve this daemon (made after the operator: its driver goes in); None: serve none."""
        from healthd.engine import Engine

        engine = daemon.engine if daemon is not None else None
        self.daemon = daemon
        self.engine = engine if isinstance(engine, Engine) else None

    async def start(self) -> None:
        """Listen on http_listen=; HealthdError (one line) if the address cannot be had."""
        from healthd import heap
        from healthd.web.metrics import Metrics
        from healthd.web.server import WebServer

        daemon, engine = self.daemon, self.engine
        if daemon is None or engine is None or self.server is not None:
            return  # serving none (or already serving)
        heap.keep_large_blocks()  # each scrape's text is a few large blocks: keep them
        metrics = Metrics(engine, self.stats, self.driver, daemon, cluster=self.cluster)
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
