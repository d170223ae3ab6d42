"""dns check against a real dnsmasq on 127.0.0.1 and ::1, over UDP and TCP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import checks
from checks import CheckLoadError
from checks.base import CheckContext, CheckOptionError, Status
from checks.dns import DNSCheck
from tests.checks._support import make_target
from tests.checks.servers.dnsmasq import dnsmasq

PROTOCOLS = ["udp", "tcp"]


@pytest.fixture
def server(host: str, tmp_path: Path) -> Iterator[int]:
    with dnsmasq(host, tmp_path) as port:
        yield port


def ctx(timeout: float = 3.0) -> CheckContext:
    return CheckContext(timeout=timeout)


async def run(options: dict[str, str], host: str, port: int, protocol: str, limit: float = 3.0):
    check = DNSCheck.from_options(options, ctx(limit))
    return await check.check(make_target(host, port, protocol=protocol))


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_record_matches(server: int, host: str, protocol: str) -> None:
    result = await run(
        {"request": "/www.example.com", "receive": r"^192\.0\.2\.10$"}, host, server, protocol
    )
    assert result.status is Status.UP, result
    assert "192.0.2.10" in result.detail


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_address_request_asks_for_ptr(server: int, host: str, protocol: str) -> None:
    result = await run(
        {"request": "192.0.2.20", "receive": "^db.example.com$"}, host, server, protocol
    )
    assert result.up, result
    assert "PTR" in result.detail


async def test_empty_receive_takes_any_answer(server: int, host: str) -> None:
    # ldirectord reports every real down when receive is empty; healthd takes any answer
    result = await run({"request": "www.example.com"}, host, server, "udp")
    assert result.up, result


async def test_fwmark_virtual_asks_over_udp(server: int, host: str) -> None:
    result = await run({"request": "www.example.com", "receive": "192"}, host, server, "fwm")
    assert result.up, result


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_receive_mismatch(server: int, host: str, protocol: str) -> None:
    result = await run({"request": "www.example.com", "receive": "^198\\."}, host, server, protocol)
    assert result.status is Status.DOWN
    assert result.reason == "body_mismatch"
    assert "192.0.2.10" in result.detail


async def test_unknown_name_is_down(server: int, host: str) -> None:
    result = await run({"request": "nobody.example.com", "receive": "."}, host, server, "udp")
    assert result.status is Status.DOWN
    assert result.reason == "status_mismatch"
    assert "NXDOMAIN" in result.detail


async def test_refused_tcp(closed_port: int, host: str) -> None:
    result = await run({"request": "www.example.com"}, host, closed_port, "tcp")
    assert result.status is Status.DOWN
    assert result.reason == "refused"


async def test_refused_udp(closed_port: int, host: str) -> None:
    # nothing listens on the UDP port either: the ICMP port-unreachable comes back at once
    result = await run({"request": "www.example.com"}, host, closed_port, "udp")
    assert result.status is Status.DOWN
    assert result.reason == "refused"


async def test_silent_tcp_server_times_out(silent_port: int, host: str) -> None:
    result = await run({"request": "www.example.com"}, host, silent_port, "tcp", limit=0.3)
    assert result.status is Status.DOWN
    assert result.reason == "timeout"


async def test_silent_udp_server_times_out(silent_udp_port: int, host: str) -> None:
    result = await run({"request": "www.example.com"}, host, silent_udp_port, "udp", limit=0.3)
    assert result.status is Status.DOWN
    assert result.reason == "timeout"


@pytest.mark.parametrize("request_", ["", "/", "bad..name"])
def test_request_must_be_a_name(request_: str) -> None:
    with pytest.raises(CheckOptionError) as info:
        DNSCheck.from_options({"request": request_}, ctx())
    assert info.value.option == "request"


def test_default_port() -> None:
    assert checks.KINDS["dns"].port == 53


def test_missing_library_is_a_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # should the library be missing, the kind fails to load with the package to install
    monkeypatch.delitem(sys.modules, "checks.dns")
    monkeypatch.setitem(sys.modules, "dns", None)
    with pytest.raises(CheckLoadError, match="'dnspython'"):
        checks.load("dns")
