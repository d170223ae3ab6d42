"""checks.KINDS is the one list of check kinds; everything that names a kind derives from it.

Adding a check is its module plus one registry line (and the ServiceName member mypy needs,
and a COMPAT row): these tests fail on the part that was forgotten.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

import checks
from checks.base import CheckContext
from healthd import probes
from healthd.config.build import PORT_SERVICES
from healthd.model import CheckSpec, Real, ServiceName

COMPAT = Path(__file__).resolve().parents[2] / "docs" / "COMPAT.md"
# every option healthd hands a check (healthd.probes.options), with values every kind accepts
OFFERED = {
    "service": "x",
    "request": "dc=example,dc=com",
    "receive": "",
    "httpmethod": "GET",
    "login": "user",
    "passwd": "secret",
    "database": "db",
    "secret": "s",
    "checkcommand": "/bin/true",
    "checkcount": "1",
    "tls_verify": "no",
    "virtualhost": "www.example.com",
    "tls_cafile": "",
    "tls_hostname": "",
}
PER_KIND = {"http_proxy": {"request": "http://example.com/"}}


class Recording(dict[str, str]):
    """The options, remembering every key a check asks for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("a check reads its options by name")


@pytest.mark.parametrize("name", sorted(checks.KINDS))
def test_each_kind_loads_and_reads_only_the_options_it_declares(name: str) -> None:
    kind = checks.KINDS[name]
    cls = checks.load(name)  # the test extra installs every optional check library
    assert cls.kind == name
    options = Recording({**OFFERED, **PER_KIND.get(name, {})})
    cls.from_options(options, CheckContext(timeout=1.0))
    assert options.asked - {"service"} <= kind.options, f"{name} reads undeclared options"
    assert kind.options <= OFFERED.keys(), "the registry names an option healthd never offers"


def test_the_offered_options_are_healthds() -> None:
    spec = CheckSpec(virtualhost="www", tls_cafile="/ca.pem", tls_hostname="www")
    offered = set(probes.options(spec, Real(IPv4Address("192.0.2.1"), 80)))
    assert offered == OFFERED.keys()


def test_service_names_are_the_registry_s() -> None:
    registry = {kind.name for kind in checks.services()}
    assert {str(s) for s in ServiceName} == registry | {"none"}, (
        "a service kind needs its ServiceName member (healthd/model.py), and only those"
    )


def test_default_ports_and_port_guesses_derive_from_the_registry() -> None:
    ports = {kind.name: kind.port for kind in checks.services() if kind.port}
    assert {str(s): p for s, p in probes.SERVICE_PORTS.items()} == ports
    assert {p: str(s) for p, s in PORT_SERVICES.items()} == {p: n for n, p in ports.items()}
    assert len(set(ports.values())) == len(ports), "two kinds claim one port"


def test_checktype_kinds_are_not_services() -> None:
    assert {k.name for k in checks.KINDS.values() if not k.service} == {
        "connect",
        "ping",
        "external",
        "external-perl",
    }


def test_every_service_has_a_compat_row() -> None:
    text = COMPAT.read_text()
    rows = set(re.findall(r"`service=([a-z_]+)`", text))
    missing = sorted(k.name for k in checks.services() if k.name not in rows)
    assert missing == [], f"docs/COMPAT.md has no `service=NAME` row for {missing}"
