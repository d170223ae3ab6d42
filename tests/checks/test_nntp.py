"""nntp check against a real NNTP server (JamNNTPd) on 127.0.0.1, and on ::1 through a socat
relay (JamNNTPd listens on IPv4 only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import checks
from checks.base import CheckContext, Status
from checks.nntp import NNTPCheck
from tests.checks._support import make_target
from tests.checks.servers.nntp import jamnntpd
from tests.checks.servers.smtp import smtp_server
from tests.checks.servers.socat import tcp_relay


@pytest.fixture(scope="module")
def news_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with jamnntpd(tmp_path_factory.mktemp("nntp")) as port:
        yield port


@pytest.fixture(scope="module")
def denying_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with jamnntpd(tmp_path_factory.mktemp("nntp-deny"), allow=False) as port:
        yield port


def check(timeout: float = 5.0) -> NNTPCheck:
    return NNTPCheck.from_options({}, CheckContext(timeout=timeout))


def test_default_port() -> None:
    assert checks.KINDS["nntp"].port == 119


async def test_greeting_200_is_up(news_port: int) -> None:
    result = await check().check(make_target("127.0.0.1", news_port))
    assert result.status is Status.UP, result
    assert result.detail.startswith("200 ")


async def test_greeting_over_ipv6_is_up(news_port: int, host: str, tmp_path: Path) -> None:
    with tcp_relay(host, news_port, tmp_path) as port:
        result = await check().check(make_target(host, port))
    assert result.status is Status.UP, result
    assert result.detail.startswith("200 ")


async def test_access_denied_is_down(denying_port: int) -> None:
    result = await check().check(make_target("127.0.0.1", denying_port))
    assert result.status is Status.DOWN
    assert result.reason == "status_mismatch"
    assert result.detail.startswith("greeting: 502")


async def test_smtp_server_is_not_nntp(host: str) -> None:
    # checkport pointing at a mail server: its 220 greeting is not 200/201
    async with smtp_server(host) as server:
        result = await check().check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "status_mismatch"
