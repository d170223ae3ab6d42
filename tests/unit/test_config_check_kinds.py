"""A check kind that cannot be loaded is a configuration error at its virtual's line.

The optional check libraries (asyncmy, asyncpg, oracledb, ldap3, dnspython) are imported only
when a configuration uses their check; a missing one stops the configuration from loading,
with the package to install, instead of failing at the first check.
"""

from __future__ import annotations

import sys

import pytest

from healthd.config import ConfigErrors, StaticResolver, format_errors, parse_text_with_warnings

RESOLVER = StaticResolver(services={})

MYSQL = """\
checktimeout=3
virtual=192.0.2.10:3306
\treal=198.51.100.5:3306 gate
\tservice=mysql
\tlogin="monitor"
\trequest="SELECT 1"
"""


def _without(monkeypatch: pytest.MonkeyPatch, package: str, module: str) -> None:
    """Make `package` impossible to import and forget the check module that imported it."""
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, package, None)


def test_missing_driver_is_an_error_at_the_virtual(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "asyncmy", "checks.mysql")
    with pytest.raises(ConfigErrors) as info:
        parse_text_with_warnings(MYSQL, "t.cf", resolver=RESOLVER, hostname="h")
    assert [str(d) for d in info.value.diagnostics] == [
        "t.cf:2:9: error: check type 'mysql' needs the Python package 'asyncmy', which is not"
        " installed (a dependency of healthd: install that package, or reinstall healthd)"
    ]
    assert "virtual=192.0.2.10:3306" in format_errors(info.value)


def test_each_virtual_with_a_missing_driver_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "ldap3", "checks.ldap")
    text = (
        "virtual=192.0.2.10:389\n\treal=198.51.100.5 gate\n\n"
        "virtual=192.0.2.11:80\n\treal=198.51.100.6 gate\n\n"
        "virtual=192.0.2.12:636\n\treal=198.51.100.7 gate\n"
    )
    with pytest.raises(ConfigErrors) as info:
        parse_text_with_warnings(text, "t.cf", resolver=RESOLVER, hostname="h")
    lines = [(d.loc.line if d.loc else 0, d.message.split(",")[0]) for d in info.value.diagnostics]
    assert lines == [
        (1, "check type 'ldap' needs the Python package 'ldap3'"),
        (7, "check type 'ldaps' needs the Python package 'ldap3'"),
    ]


def test_a_driver_no_check_runs_is_not_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    # checktype=connect, on and off never run the mysql check: its driver is not needed
    _without(monkeypatch, "asyncmy", "checks.mysql")
    for checktype in ("connect", "on", "off"):
        text = MYSQL + f"\tchecktype={checktype}\n"
        config, warnings = parse_text_with_warnings(text, "t.cf", resolver=RESOLVER, hostname="h")
        assert (len(config.virtuals), warnings) == (1, [])
    assert "checks.mysql" not in sys.modules


def test_a_combined_check_needs_its_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "asyncpg", "checks.pgsql")
    text = MYSQL.replace("3306", "5432").replace("mysql", "pgsql") + "\tchecktype=3\n"
    with pytest.raises(ConfigErrors) as info:
        parse_text_with_warnings(text, "t.cf", resolver=RESOLVER, hostname="h")
    assert [d.message.split(",")[0] for d in info.value.diagnostics] == [
        "check type 'pgsql' needs the Python package 'asyncpg'"
    ]


def test_installed_drivers_load_without_a_diagnostic() -> None:
    services = ["ldap", "ldaps", "mysql", "pgsql", "oracle", "dns", "radius", "sip", "ftp"]
    blocks = [
        f"virtual=192.0.2.{n}:99\n\treal=198.51.100.5 gate\n\tservice={service}\n"
        for n, service in enumerate(services, 1)
    ]
    config, warnings = parse_text_with_warnings(
        "\n".join(blocks), "t.cf", resolver=RESOLVER, hostname="h"
    )
    assert [str(v.check.service) for v in config.virtuals] == services
    assert warnings == []
