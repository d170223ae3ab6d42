"""ftp check against a real FTP server (pyftpdlib) on 127.0.0.1 and ::1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import checks
from checks.base import CheckContext, CheckOptionError, Status
from checks.ftp import FTPCheck
from tests.checks._support import make_target
from tests.checks.servers.ftpd import ftp_server

USER, PASSWORD = "check", "pa55word"


@pytest.fixture(scope="module")
def ftp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ftproot")
    (root / "index.txt").write_text("Welcome to the backend\nstatus: healthy\n")
    return root


@pytest.fixture(scope="module", params=["127.0.0.1", "::1"])
def server(
    request: pytest.FixtureRequest, ftp_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    host = str(request.param)
    with ftp_server(host, ftp_root, USER, PASSWORD, tmp_path_factory.mktemp("ftp")) as port:
        yield host, port


def check(timeout: float = 5.0, **options: str) -> FTPCheck:
    return FTPCheck.from_options(options, CheckContext(timeout=timeout))


async def test_anonymous_login_is_up(server: tuple[str, int]) -> None:
    result = await check().check(make_target(*server))
    assert result.status is Status.UP, result
    assert result.detail == "logged in"


async def test_download_matching_receive_is_up(server: tuple[str, int]) -> None:
    opts = {"login": USER, "passwd": PASSWORD, "request": "/index.txt", "receive": "status: he"}
    result = await check(**opts).check(make_target(*server))
    assert result.status is Status.UP, result
    assert result.detail == "/index.txt: 39 bytes"


async def test_download_without_receive_is_up(server: tuple[str, int]) -> None:
    result = await check(request="/index.txt").check(make_target(*server))
    assert result.up, result


async def test_wrong_content_is_down(server: tuple[str, int]) -> None:
    result = await check(request="/index.txt", receive="status: sick").check(make_target(*server))
    assert result.status is Status.DOWN
    assert result.reason == "body_mismatch"


async def test_missing_file_is_down(server: tuple[str, int]) -> None:
    # ldirectord: an empty receive and a failed download still report up
    result = await check(request="/missing.txt").check(make_target(*server))
    assert result.status is Status.DOWN
    assert result.reason == "status_mismatch"
    assert "550" in result.detail


async def test_wrong_password_is_down(server: tuple[str, int]) -> None:
    result = await check(login=USER, passwd="nope").check(make_target(*server))
    assert result.status is Status.DOWN
    assert result.reason == "auth_failed"
    assert "530" in result.detail


def test_bad_receive_is_an_option_error() -> None:
    with pytest.raises(CheckOptionError) as err:
        check(receive="(")
    assert err.value.option == "receive"


def test_default_port() -> None:
    assert checks.KINDS["ftp"].port == 21
