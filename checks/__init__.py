"""The check library: the registry of check kinds (KINDS) and their lazy loading.

A kind's module is imported only when `load(kind)` is called, so an optional dependency (a
database driver, an LDAP client) is needed only when a configuration uses that kind.
This package never imports healthd.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from checks.base import Check, CheckLoadError, UnknownCheckError

if TYPE_CHECKING:  # mypy proves that the core checks satisfy the Check protocol
    from checks.connect import ConnectCheck
    from checks.external import ExternalCheck
    from checks.http import HTTPCheck, HTTPProxyCheck, HTTPSCheck
    from checks.ping import PingCheck

    _CORE: tuple[type[Check], ...] = (
        ConnectCheck,
        PingCheck,
        ExternalCheck,
        HTTPCheck,
        HTTPSCheck,
        HTTPProxyCheck,
    )

__all__ = [
    "KINDS",
    "CheckLoadError",
    "Kind",
    "UnknownCheckError",
    "default_port",
    "is_service",
    "known",
    "load",
    "service_on",
    "services",
]

_HTTP: Final = frozenset({"request", "receive", "httpmethod", "virtualhost"})
_TLS: Final = frozenset({"tls_verify", "tls_cafile", "tls_hostname", "virtualhost"})
_LOGIN: Final = frozenset({"login", "passwd"})
_SQL: Final = frozenset({"login", "passwd", "database", "request"})


@dataclass(frozen=True, slots=True)
class Kind:
    """One check kind: its ldirectord name, where its class lives, its port, what it reads."""

    name: str  # ldirectord's service= or checktype= name
    target: str  # "module:Class", imported only by load()
    port: int = 0  # ldirectord's default check port and port-guessed service (0: none)
    service: bool = True  # a service= value; False for the checktype-only kinds
    options: frozenset[str] = frozenset()  # the check options its from_options reads


# The one list of check kinds: a new check is its module plus one line here (the config
# reader, the port defaults and guesses, `dump`, status and dispatch read it at call time;
# tests/unit/test_check_registry.py holds them and docs/COMPAT.md to it).
# ldirectord: ld_checkport / ld_port_to_service for the ports (l.1860).
KINDS: Final[Mapping[str, Kind]] = MappingProxyType(
    {
        k.name: k
        for k in (
            Kind("connect", "checks.connect:ConnectCheck", service=False),
            Kind("ping", "checks.ping:PingCheck", service=False, options=frozenset({"checkcount"})),
            Kind("external", "checks.external:ExternalCheck", service=False,
                 options=frozenset({"checkcommand"})),
            Kind("external-perl", "checks.external_perl:ExternalPerlCheck", service=False,
                 options=frozenset({"checkcommand"})),
            Kind("http", "checks.http:HTTPCheck", 80, options=_HTTP | _TLS),
            Kind("https", "checks.http:HTTPSCheck", 443, options=_HTTP | _TLS),
            Kind("http_proxy", "checks.http:HTTPProxyCheck", 3128, options=_HTTP | _TLS),
            Kind("ftp", "checks.ftp:FTPCheck", 21, options=_LOGIN | {"request", "receive"}),
            Kind("smtp", "checks.smtp:SMTPCheck", 25),
            Kind("submission", "checks.smtp:SubmissionCheck", 587),
            Kind("pop", "checks.pop:POPCheck", 110, options=_LOGIN),
            Kind("pops", "checks.pop:POPSCheck", 995, options=_LOGIN | _TLS),
            Kind("imap", "checks.imap:IMAPCheck", 143, options=_LOGIN),
            Kind("imaps", "checks.imap:IMAPSCheck", 993, options=_LOGIN | _TLS),
            Kind("nntp", "checks.nntp:NNTPCheck", 119),
            Kind("ldap", "checks.ldap:LDAPCheck", 389,
                 options=_LOGIN | _TLS | {"request", "receive"}),
            Kind("ldaps", "checks.ldap:LDAPSCheck", 636,
                 options=_LOGIN | _TLS | {"request", "receive"}),
            Kind("mysql", "checks.mysql:MySQLCheck", 3306, options=_SQL),
            Kind("pgsql", "checks.pgsql:PgSQLCheck", 5432, options=_SQL),
            Kind("oracle", "checks.oracle:OracleCheck", 1521, options=_SQL),
            Kind("dns", "checks.dns:DNSCheck", 53, options=frozenset({"request", "receive"})),
            Kind("radius", "checks.radius:RadiusCheck", 1812,
                 options=_LOGIN | {"secret"}),
            Kind("sip", "checks.sip:SIPCheck", 5060, options=frozenset({"login"})),
            Kind("simpletcp", "checks.simpletcp:SimpleTCPCheck",
                 options=frozenset({"request", "receive"})),
        )
    }
)  # fmt: skip


def services() -> list[Kind]:
    """Return the kinds that are service= values, in registry order."""
    return [k for k in KINDS.values() if k.service]


def is_service(name: str) -> bool:
    """Return whether `name` is a registered service= value."""
    kind = KINDS.get(name)
    return kind is not None and kind.service


def default_port(name: str) -> int:
    """Return the default check port of service `name` (0: none, or no such service)."""
    kind = KINDS.get(name)
    return kind.port if kind is not None and kind.service else 0


def service_on(port: int) -> str | None:
    """Return the service ldirectord guesses for a virtual on `port`, or None."""
    if port <= 0:
        return None
    return next((k.name for k in KINDS.values() if k.service and k.port == port), None)


def known() -> list[str]:
    """Return every registered check kind, sorted."""
    return sorted(KINDS)


def load(kind: str) -> type[Check]:
    """Import and return the class for `kind`; raise CheckLoadError if that is impossible."""
    try:
        target = KINDS[kind].target
    except KeyError:
        raise UnknownCheckError(kind, known()) from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            msg = f"check type {kind!r} is not available in this build ({module_name} is missing)"
        else:
            msg = (
                f"check type {kind!r} needs the Python package {exc.name!r}, which is not installed"
            )
        raise CheckLoadError(kind, msg) from exc
    try:
        cls: type[Check] = getattr(module, attr)
    except AttributeError:
        msg = f"check type {kind!r}: {module_name} has no {attr}"
        raise CheckLoadError(kind, msg) from None
    return cls
