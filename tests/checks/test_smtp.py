"""smtp and submission checks against a real SMTP server (aiosmtpd) on 127.0.0.1 and ::1."""

from __future__ import annotations

import pytest

import checks
from checks.base import CheckContext, Status
from checks.smtp import SMTPCheck, SubmissionCheck
from tests.checks._support import make_target
from tests.checks.servers.smtp import smtp_server

KINDS = [SMTPCheck, SubmissionCheck]


def ctx(timeout: float = 5.0) -> CheckContext:
    return CheckContext(timeout=timeout)


def test_default_ports() -> None:
    assert (checks.KINDS["smtp"].port, checks.KINDS["submission"].port) == (25, 587)
    assert (SMTPCheck.kind, SubmissionCheck.kind) == ("smtp", "submission")


@pytest.mark.parametrize("cls", KINDS)
async def test_greeting_and_ehlo_succeed(host: str, cls: type[SMTPCheck]) -> None:
    async with smtp_server(host) as server:
        result = await cls.from_options({}, ctx()).check(make_target(host, server.port))
    assert result.status is Status.UP, result
    assert result.detail.startswith("220 mx.example.org")


@pytest.mark.parametrize("cls", KINDS)
async def test_server_refusing_hello_is_down(host: str, cls: type[SMTPCheck]) -> None:
    async with smtp_server(host, refuse_hello=True) as server:
        result = await cls.from_options({}, ctx()).check(make_target(host, server.port))
    assert result.status is Status.DOWN
    assert result.reason == "status_mismatch"
    assert "550" in result.detail
