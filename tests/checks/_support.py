"""Helpers for the check tests: targets, contexts and a TLS context that records SNI."""

from __future__ import annotations

import ssl
from ipaddress import ip_address

import trustme

from checks.base import CheckContext, Target


def make_target(host: str, port: int, **kwargs: object) -> Target:
    """Return a Target for host:port (real_port defaults to port)."""
    kwargs.setdefault("real_port", port)
    return Target(ip_address(host), port, **kwargs)  # type: ignore[arg-type]


def ctx(timeout: float = 2.0) -> CheckContext:
    """Return a CheckContext with the shared (lazy) HTTP session."""
    return CheckContext(timeout=timeout)


class SNIRecorder:
    """A server SSL context that records the SNI names clients send."""

    def __init__(self, ca: trustme.CA, *names: str) -> None:
        self.names: list[str | None] = []
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(self.context)
        self.context.sni_callback = self._record

    def _record(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.names.append(name)
