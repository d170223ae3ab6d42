"""Several errors in one file: all reported, in file order, none hidden by another.

The files combine errors found by the lexer (indentation), the parser (values), the
builder (name resolution) and the check loader (a missing client library).
"""

from __future__ import annotations

import pytest

import checks
from healthd.config import ConfigErrors, StaticResolver, parse_text

RESOLVER = StaticResolver(hosts={"web1.example": ["198.51.100.5"]})


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        parse_text(text, "o.cf", resolver=RESOLVER, hostname="director")
    return [str(d) for d in caught.value.diagnostics if d.severity == "error"]


@pytest.fixture
def no_ldap_library(monkeypatch: pytest.MonkeyPatch) -> None:
    real_load = checks.load

    def load(kind: str):  # type: ignore[no-untyped-def]
        if kind.startswith("ldap"):
            raise ImportError("the ldap check needs the ldap3 package")
        return real_load(kind)

    monkeypatch.setattr(checks, "load", load)


@pytest.mark.usefixtures("no_ldap_library")
def test_lexer_parser_builder_and_loader_errors_come_in_file_order() -> None:
    errors = _errors(
        "fallback=gone.example:80 gate\n"  # 1 builder
        "checkinterval=fast\n"  # 2 parser
        "  quiescent=yes\n"  # 3 lexer
        "virtual=192.0.2.10:389\n"  # 4 loader (the ldap library is missing)
        "    service=ldap\n"
        "    real=web1.example:389 gate\n"
        "virtual=192.0.2.11\n"  # 7 parser (no port)
        "    real=web2.example:80 gate\n"  # 8 builder, in the block whose head failed
        "virtual=192.0.2.12:80\n"
        "    real=198.51.100.7:80 gate bogus\n"  # 10 parser
        "    real=web3.example:80 gate\n"  # 11 builder
    )
    lines = [int(e.split(":")[1]) for e in errors]
    assert lines == [1, 2, 3, 4, 7, 8, 10, 11], errors
    assert "cannot resolve host 'gone.example'" in errors[0]
    assert "invalid checkinterval 'fast'" in errors[1]
    assert "indentation of 2 spaces" in errors[2]
    assert "the ldap check needs the ldap3 package" in errors[3]
    assert "has no port" in errors[4]
    assert "cannot resolve host 'web2.example'" in errors[5]
    assert "invalid weight 'bogus'" in errors[6]
    assert "cannot resolve host 'web3.example'" in errors[7]


def test_a_global_fallback_error_shows_when_no_virtual_builds() -> None:
    errors = _errors(
        "fallback=gone.example:80 gate\nvirtual=192.0.2.11\n    real=198.51.100.5:80 gate\n"
    )
    assert errors == [
        "o.cf:1:10: error: cannot resolve host 'gone.example' to an IPv4 address",
        "o.cf:2:9: error: virtual address '192.0.2.11' has no port (ldirectord reads this "
        "as a firewall mark); write ADDRESS:PORT, or a plain number for a firewall mark",
    ]


def test_a_global_fallback_error_is_reported_once_for_many_virtuals() -> None:
    errors = _errors(
        "fallback=gone.example gate\n"
        "virtual=192.0.2.10:80\n    real=198.51.100.5:80 gate\n"
        "virtual=192.0.2.11:80\n    real=198.51.100.6:80 gate\n"
    )
    assert errors == ["o.cf:1:10: error: cannot resolve host 'gone.example' to an IPv4 address"]
