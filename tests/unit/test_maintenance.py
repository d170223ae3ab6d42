"""Tests for healthd.maintenance: every file-name form ldirectord accepts, and the scan."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from healthd.health import check_key
from healthd.maintenance import forced_down, lookup_hostname, names_for, scan, short_name
from healthd.model import CheckSpec, CheckType, Config, Forward, Proto, Real, Virtual

R4 = Real(ip_address("198.51.100.1"), 80)
R4_OTHER_PORT = Real(ip_address("198.51.100.1"), 8080, Forward.MASQ)
R6 = Real(ip_address("2001:db8::1"), 443)
RFWM = Real(ip_address("198.51.100.2"), 0)
V4 = Virtual(Proto.TCP, ip_address("192.0.2.10"), 80, reals=(R4, R4_OTHER_PORT))
V_ON = Virtual(
    Proto.TCP, ip_address("192.0.2.11"), 80, reals=(R4,), check=CheckSpec(checktype=CheckType.ON)
)
V6 = Virtual(Proto.TCP, ip_address("2001:db8::10"), 443, family=6, reals=(R6,))
VFWM = Virtual(Proto.FWM, None, 0, fwmark=5, reals=(RFWM,))
CONFIG = Config("m.cf", (V4, V_ON, V6, VFWM), maintenancedir="/etc/ha.d/maint")
HOSTS = {R4.address: "web1.example.org", R6.address: "web6.example.org"}


def keys(*pairs: tuple[Virtual, Real]) -> set:
    return {check_key(v, r) for v, r in pairs}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("198.51.100.1:80", keys((V4, R4), (V_ON, R4)), id="ip:port"),
        pytest.param("198.51.100.1:8080", keys((V4, R4_OTHER_PORT)), id="ip:other-port"),
        pytest.param("198.51.100.1", keys((V4, R4), (V4, R4_OTHER_PORT), (V_ON, R4)), id="ip"),
        pytest.param("web1.example.org:80", keys((V4, R4), (V_ON, R4)), id="fqdn:port"),
        pytest.param(
            "web1.example.org", keys((V4, R4), (V4, R4_OTHER_PORT), (V_ON, R4)), id="fqdn"
        ),
        pytest.param("web1:8080", keys((V4, R4_OTHER_PORT)), id="short:port"),
        pytest.param("web1", keys((V4, R4), (V4, R4_OTHER_PORT), (V_ON, R4)), id="short"),
        pytest.param("[2001:db8::1]:443", keys((V6, R6)), id="[v6]:port"),
        pytest.param("[2001:db8::1]", keys((V6, R6)), id="[v6]"),
        pytest.param("2001:db8::1", keys((V6, R6)), id="bare-v6"),
        pytest.param("web6:443", keys((V6, R6)), id="v6-short:port"),
        pytest.param("198.51.100.2:0", keys((VFWM, RFWM)), id="fwmark-real-port-0"),
        pytest.param("198.51.100.2", keys((VFWM, RFWM)), id="fwmark-real-ip"),
        pytest.param("198.51.100.1:81", set(), id="wrong-port"),
        pytest.param("198.51.100.10", set(), id="other-ip"),
        pytest.param("web1.example", set(), id="partial-fqdn"),
        pytest.param("README", set(), id="unrelated"),
    ],
)
def test_every_name_form(name, expected):
    assert forced_down([name], CONFIG, HOSTS) == expected


def test_without_reverse_names_only_addresses_match():
    assert forced_down(["web1"], CONFIG) == set()
    assert forced_down(["198.51.100.1:80"], CONFIG) == keys((V4, R4), (V_ON, R4))


def test_no_names_no_keys():
    assert forced_down([], CONFIG, HOSTS) == set()


def test_names_for_follows_ldirectord_order():
    assert names_for(R4, "web1.example.org") == (
        "198.51.100.1:80",
        "198.51.100.1",
        "web1.example.org:80",
        "web1.example.org",
        "web1:80",
        "web1",
    )


@pytest.mark.parametrize(
    ("hostname", "short"),
    [
        ("web1.example.org", "web1"),
        ("db-02.example.org", "db-02"),
        ("Web1.example.org", None),  # ldirectord: lower-case names only
        ("w.example.org", None),  # ldirectord's pattern needs two characters
        ("localhost", None),  # no dot, no short name
        ("1web.example.org", None),
    ],
)
def test_short_name(hostname, short):
    assert short_name(hostname) == short


def test_scan_lists_the_directory(tmp_path):
    (tmp_path / "198.51.100.1:80").touch()
    (tmp_path / "web1").touch()
    assert scan(tmp_path) == {"198.51.100.1:80", "web1"}


def test_scan_of_missing_directory_is_empty(tmp_path):
    assert scan(tmp_path / "absent") == set()


def test_scan_then_forced_down(tmp_path):
    (tmp_path / "[2001:db8::1]").touch()
    assert forced_down(scan(tmp_path), CONFIG) == keys((V6, R6))


def test_lookup_hostname_of_loopback_is_a_name_or_none():
    name = lookup_hostname(ip_address("127.0.0.1"))
    assert name is None or (isinstance(name, str) and name != "127.0.0.1")


def test_a_name_without_short_form_matches_only_in_full():
    hosts = {R4.address: "Web1.example.org"}
    assert forced_down(["Web1"], CONFIG, hosts) == set()
    assert forced_down(["Web1.example.org:80"], CONFIG, hosts) == keys((V4, R4), (V_ON, R4))


def test_lookup_hostname_failure_is_none(monkeypatch):
    def fail(*_args):
        raise OSError("no name")

    monkeypatch.setattr("socket.getnameinfo", fail)
    assert lookup_hostname(ip_address("198.51.100.1")) is None
