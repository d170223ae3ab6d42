"""The check library: a lazy registry from ldirectord's check names to check classes.

A kind's module is imported only when `load(kind)` is called, so an optional dependency (a
database driver, an LDAP client) is needed only when a configuration uses that kind.
This package never imports healthd.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
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

__all__ = ["CHECKS", "CheckLoadError", "UnknownCheckError", "known", "load"]

# Keys are ldirectord's service / checktype names (lower case); values are "module:Class".
CHECKS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "connect": "checks.connect:ConnectCheck",
        "ping": "checks.ping:PingCheck",
        "external": "checks.external:ExternalCheck",
        "http": "checks.http:HTTPCheck",
        "https": "checks.http:HTTPSCheck",
        "http_proxy": "checks.http:HTTPProxyCheck",
        "ftp": "checks.ftp:FTPCheck",
        "smtp": "checks.smtp:SMTPCheck",
        "submission": "checks.smtp:SubmissionCheck",
        "pop": "checks.pop:POPCheck",
        "pops": "checks.pop:POPSCheck",
        "imap": "checks.imap:IMAPCheck",
        "imaps": "checks.imap:IMAPSCheck",
        "nntp": "checks.nntp:NNTPCheck",
        "ldap": "checks.ldap:LDAPCheck",
        "ldaps": "checks.ldap:LDAPSCheck",
        "mysql": "checks.mysql:MySQLCheck",
        "pgsql": "checks.pgsql:PgSQLCheck",
        "oracle": "checks.oracle:OracleCheck",
        "dns": "checks.dns:DNSCheck",
        "radius": "checks.radius:RadiusCheck",
        "sip": "checks.sip:SIPCheck",
        "simpletcp": "checks.simpletcp:SimpleTCPCheck",
        "external-perl": "checks.external_perl:ExternalPerlCheck",
    }
)


def known() -> list[str]:
    """Return every registered check kind, sorted."""
    return sorted(CHECKS)


def load(kind: str) -> type[Check]:
    """Import and return the class for `kind`; raise CheckLoadError if that is impossible."""
    try:
        target = CHECKS[kind]
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
