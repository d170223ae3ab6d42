"""Helpers for the check tests: targets, contexts and a TLS context that records SNI."""

from __future__ import annotations

import ssl
from ipaddress import ip_address

import trustme

from checks.base import CheckContext, Target

# Targets for the external checks: an IPv4 and an IPv6 virtual, and a firewall mark
EXTERNAL_V4 = Target(
    ip_address("127.0.0.2"), 8025, real_port=8025, virtual_address=ip_address("192.0.2.21"),
    virtual_port=25,
)  # fmt: skip
EXTERNAL_V6 = Target(
    ip_address("::1"), 8080, real_port=8080, virtual_address=ip_address("2001:db8::10"),
    virtual_port=80,
)  # fmt: skip
EXTERNAL_FWM = Target(ip_address("127.0.0.2"), 80, real_port=0, virtual_address=None, fwmark=7)


def make_target(host: str, port: int, **kwargs: object) -> Target:
    """Return a Target for host:port (real_port defaults to port)."""
    kwargs.setdefault("real_port", port)
    return Target(ip_address(host), port, **kwargs)  # type: ignore[arg-type]


def ctx(timeout: float = 2.0) -> CheckContext:
    """Return a CheckContext with the given timeout."""
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
