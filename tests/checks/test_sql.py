"""What every SQL check (mysql, pgsql, oracle) shares, each kind tested the same way:
ldirectord's option rules, refused and silent servers, and a missing driver package.

Each kind's own file tests it against its real server (oracle: none is available here).
"""

from __future__ import annotations

import sys

import pytest

import checks
from checks import CheckLoadError
from checks._sql import SQLCheck
from checks.base import CheckContext, CheckOptionError, Status
from tests.checks._support import make_target

# kind, default port, check module, driver package
KINDS = [
    ("mysql", 3306, "checks.mysql", "asyncmy"),
    ("pgsql", 5432, "checks.pgsql", "asyncpg"),
    ("oracle", 1521, "checks.oracle", "oracledb"),
]
KIND_NAMES = [kind for kind, *_ in KINDS]


def ctx(timeout: float = 3.0) -> CheckContext:
    return CheckContext(timeout=timeout)


def opts(**kwargs: str) -> dict[str, str]:
    base = {"login": "monitor", "passwd": "pw", "database": "db", "request": "/SELECT 1"}
    return base | kwargs


def build(kind: str, options: dict[str, str], timeout: float = 3.0) -> SQLCheck:
    cls = checks.load(kind)
    check = cls.from_options(options, ctx(timeout))
    assert isinstance(check, SQLCheck)
    return check


@pytest.mark.parametrize(("kind", "port", "module", "package"), KINDS)
def test_options_and_default_port(kind: str, port: int, module: str, package: str) -> None:
    check = build(kind, opts(), timeout=7.0)
    assert check.options.query == "SELECT 1"  # ldirectord drops the leading "/"
    opt = check.options
    assert (opt.login, opt.passwd, opt.database, opt.timeout) == ("monitor", "pw", "db", 7.0)
    assert (check.kind, checks.KINDS[kind].port) == (kind, port)


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("missing", ["login", "request"])
def test_login_and_request_are_required(kind: str, missing: str) -> None:
    with pytest.raises(CheckOptionError) as info:
        build(kind, opts(**{missing: ""}))
    assert info.value.option == missing


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_bare_slash_request_is_no_request(kind: str) -> None:
    # ldirectord's default request is "/", which is an empty query once the "/" is dropped
    with pytest.raises(CheckOptionError) as info:
        build(kind, opts(request="/"))
    assert info.value.option == "request"


@pytest.mark.parametrize("kind", KIND_NAMES)
async def test_refused(kind: str, closed_port: int, host: str) -> None:
    result = await build(kind, opts()).check(make_target(host, closed_port))
    assert (result.status, result.reason) == (Status.DOWN, "refused")


@pytest.mark.parametrize("kind", KIND_NAMES)
async def test_silent_server_times_out(kind: str, silent_port: int, host: str) -> None:
    # ldirectord has no timeout at all here; healthd stops at the negotiate timeout
    result = await build(kind, opts(), timeout=0.3).check(make_target(host, silent_port))
    assert (result.status, result.reason) == (Status.DOWN, "timeout")
    assert result.detail == "no answer within 0.3s"


@pytest.mark.parametrize(("kind", "port", "module", "package"), KINDS)
def test_missing_library_is_a_load_error(
    monkeypatch: pytest.MonkeyPatch, kind: str, port: int, module: str, package: str
) -> None:
    # should the library be missing, the kind fails to load with the package to install
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, package, None)
    with pytest.raises(CheckLoadError, match=f"'{package}'"):
        checks.load(kind)
