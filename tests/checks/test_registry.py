"""The lazy check registry: names, lazy loading and clear load errors."""

from __future__ import annotations

import importlib.util
import inspect

import pytest

import checks
from checks import KINDS, CheckLoadError, Kind, UnknownCheckError, load

LDIRECTORD_NAMES = {
    "connect", "ping", "external", "external-perl", "http", "https", "http_proxy", "ftp", "smtp",
    "submission", "pop", "pops", "imap", "imaps", "nntp", "ldap", "ldaps", "mysql", "pgsql",
    "oracle", "dns", "radius", "sip", "simpletcp",
}  # fmt: skip


def _module_exists(kind: str) -> bool:
    return importlib.util.find_spec(KINDS[kind].target.partition(":")[0]) is not None


PRESENT = sorted(kind for kind in KINDS if _module_exists(kind))


def test_registry_has_every_ldirectord_check_name() -> None:
    assert set(KINDS) == LDIRECTORD_NAMES


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        KINDS["new"] = Kind("new", "x:y")  # type: ignore[index]


def test_core_kinds_are_present() -> None:
    assert {"connect", "ping", "external", "http", "https", "http_proxy"} <= set(PRESENT)


@pytest.mark.parametrize("kind", PRESENT)
def test_present_kinds_load_and_carry_their_name(kind: str) -> None:
    # the test extra installs every optional check library, so every kind must load here
    cls = load(kind)
    assert cls.kind == kind
    assert inspect.iscoroutinefunction(cls.check)
    assert callable(cls.from_options)


def test_unknown_kind_names_the_kind_and_the_known_ones() -> None:
    with pytest.raises(UnknownCheckError) as info:
        load("gopher")
    assert info.value.kind == "gopher"
    assert "'gopher'" in str(info.value)
    assert "http" in info.value.known
    assert isinstance(info.value, CheckLoadError)


def test_missing_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "KINDS", {"ghost": Kind("ghost", "checks.no_such_module:Ghost")})
    with pytest.raises(CheckLoadError, match=r"'ghost' is not available.*checks\.no_such_module"):
        load("ghost")


def test_missing_dependency_names_the_package(monkeypatch, tmp_path) -> None:
    (tmp_path / "needs_dep.py").write_text("import surely_not_installed_pkg\nclass C: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(checks, "KINDS", {"dep": Kind("dep", "needs_dep:C")})
    with pytest.raises(CheckLoadError) as info:
        load("dep")
    assert info.value.kind == "dep"
    assert "'surely_not_installed_pkg'" in str(info.value)
    assert "not installed" in str(info.value)


def test_missing_class_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "KINDS", {"bad": Kind("bad", "checks.connect:NoSuchCheck")})
    with pytest.raises(CheckLoadError, match="has no NoSuchCheck"):
        load("bad")


def test_known_is_sorted() -> None:
    assert checks.known() == sorted(KINDS)
