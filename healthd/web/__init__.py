"""The operator's HTTP server: Prometheus metrics, a status page and a read-only JSON API.

Started only when `http_listen=` is configured; aiohttp and prometheus_client are imported
only then (start-up time matters). Everything here reads the engine's state; nothing
writes through HTTP (runtime control is on the root-only control socket, healthd.runtime).
"""
