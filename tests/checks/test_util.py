"""Pure helpers shared by the checks: failure classification, yes/no options, TLS settings."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import pytest

from checks._util import TLSSettings, classify, compile_receive, option_bool
from checks.base import CheckOptionError, Reason


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TimeoutError(), Reason.TIMEOUT),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), Reason.REFUSED),
        (OSError(errno.EHOSTUNREACH, "x"), Reason.UNREACHABLE),
        (OSError(errno.ENETUNREACH, "x"), Reason.UNREACHABLE),
        (ConnectionResetError(errno.ECONNRESET, "x"), Reason.RESET),
        (BrokenPipeError(errno.EPIPE, "x"), Reason.RESET),
        (OSError(errno.ETIMEDOUT, "x"), Reason.TIMEOUT),
        (OSError(errno.EMFILE, "x"), Reason.LOCAL_ERROR),  # healthd's shortage, not the real's
        (OSError(errno.ENFILE, "x"), Reason.LOCAL_ERROR),
        (OSError(errno.ENOBUFS, "x"), Reason.LOCAL_ERROR),
        (OSError(errno.ENOMEM, "x"), Reason.LOCAL_ERROR),
        (MemoryError(), Reason.LOCAL_ERROR),
        (OSError(errno.EPROTO, "x"), Reason.NETWORK_ERROR),
        (OSError("no errno"), Reason.NETWORK_ERROR),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), Reason.UNREACHABLE),
        (ssl.SSLError(1, "[SSL] wrong version number"), Reason.TLS_ERROR),
        (asyncio.IncompleteReadError(b"", 10), Reason.RESET),
        (RuntimeError("odd"), Reason.PROTOCOL_ERROR),
    ],
)
def test_classify(exc: BaseException, reason: Reason) -> None:
    got, detail = classify(exc)
    assert got is reason
    assert detail


def test_classify_uses_the_errno_text() -> None:
    assert classify(OSError(errno.ECONNREFUSED, "Connect call failed"))[1] == "Connection refused"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", True), ("Yes", True), ("no", False), ("NO", False), ("", False), ("1", True)],
)
def test_option_bool(value: str, expected: bool) -> None:
    assert option_bool({"tls_verify": value}, "tls_verify") is expected


def test_option_bool_default_and_error() -> None:
    assert option_bool({}, "x", default=True) is True
    with pytest.raises(CheckOptionError, match="yes or no"):
        option_bool({"x": "perhaps"}, "x")


def test_compile_receive() -> None:
    assert compile_receive({"receive": ""}) is None
    pattern = compile_receive({"receive": "OK|ok"})
    assert pattern is not None
    assert pattern.search("all ok")


def test_tls_settings_name_falls_back_to_virtualhost() -> None:
    assert TLSSettings.from_options({"virtualhost": "a.example"}).hostname == "a.example"
    both = {"virtualhost": "a.example", "tls_hostname": "b.example"}
    assert TLSSettings.from_options(both).hostname == "b.example"
    assert TLSSettings.from_options({}).hostname is None


def test_tls_contexts_are_shared_and_unverified_by_default() -> None:
    plain = TLSSettings.from_options({})
    assert plain.context() is TLSSettings.from_options({"virtualhost": "x"}).context()
    assert plain.context().verify_mode is ssl.CERT_NONE
    assert not plain.context().check_hostname
    verified = TLSSettings.from_options({"tls_verify": "yes"}).context()
    assert verified.verify_mode is ssl.CERT_REQUIRED
    assert verified.check_hostname
