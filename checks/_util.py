"""Helpers shared by the check modules: option parsing, failure classification, TLS settings.

Pure helpers only: nothing here opens a socket or runs a check.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from checks.base import CheckOptionError, Reason

_REFUSED = frozenset({errno.ECONNREFUSED})
_UNREACHABLE = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.EADDRNOTAVAIL}
)
_RESET = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
# healthd's own shortage, not the real's fault: no descriptor, no buffer, no memory
LOCAL = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def option_bool(options: Mapping[str, str], key: str, default: bool = False) -> bool:
    """Return a yes/no option as a bool; anything else is a CheckOptionError."""
    value = options.get(key, "").strip().lower()
    if not value:
        return default
    if value in ("yes", "true", "1", "on"):
        return True
    if value in ("no", "false", "0", "off"):
        return False
    raise CheckOptionError(key, f"{key} must be yes or no, not {value!r}")


def compile_receive(options: Mapping[str, str], key: str = "receive") -> re.Pattern[str] | None:
    """Compile `receive` as a regular expression searched in the answer; empty means no test."""
    # ldirectord: an empty receive means "do not look at the body" (`!($recstr =~ /.+/)`)
    text = options.get(key, "")
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise CheckOptionError(key, f"invalid regular expression {text!r}: {exc}") from exc


def classify(exc: BaseException) -> tuple[Reason, str]:
    """Map an expected I/O failure to a reason token and a short human detail."""
    if isinstance(exc, TimeoutError):
        return Reason.TIMEOUT, "timed out"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return Reason.TLS_ERROR, _ssl_detail(exc)
    if isinstance(exc, socket.gaierror):
        return Reason.UNREACHABLE, f"name resolution failed: {exc.strerror or exc}"
    if isinstance(exc, EOFError):  # asyncio.IncompleteReadError and friends
        return Reason.RESET, "connection closed by peer"
    if isinstance(exc, MemoryError):
        return Reason.LOCAL_ERROR, "out of memory"
    if isinstance(exc, OSError):
        detail = os.strerror(exc.errno) if exc.errno else (str(exc) or type(exc).__name__)
        if exc.errno in LOCAL:
            return Reason.LOCAL_ERROR, detail
        if exc.errno in _REFUSED:
            return Reason.REFUSED, detail
        if exc.errno in _UNREACHABLE:
            return Reason.UNREACHABLE, detail
        if exc.errno in _RESET or isinstance(exc, ConnectionResetError | BrokenPipeError):
            return Reason.RESET, detail
        if exc.errno == errno.ETIMEDOUT:
            return Reason.TIMEOUT, detail
        return Reason.NETWORK_ERROR, detail
    return Reason.PROTOCOL_ERROR, str(exc) or type(exc).__name__


def _ssl_detail(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else (str(exc) or type(exc).__name__)


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """How a TLS check treats the server's certificate (healthd extension options)."""

    verify: bool = False  # tls_verify=yes: check the chain and the name
    cafile: str | None = None  # tls_cafile: CA bundle; default: the system CAs
    hostname: str | None = None  # tls_hostname: the SNI and verified name

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> TLSSettings:
        """Read tls_verify, tls_cafile and tls_hostname; virtualhost is the name fallback."""
        verify = option_bool(options, "tls_verify")
        cafile = options.get("tls_cafile") or None
        hostname = options.get("tls_hostname") or options.get("virtualhost") or None
        if cafile is not None:
            try:
                _context(True, cafile)
            except (OSError, ssl.SSLError) as exc:
                raise CheckOptionError(
                    "tls_cafile", f"cannot load CA file {cafile}: {exc}"
                ) from exc
        return cls(verify, cafile, hostname)

    def context(self) -> ssl.SSLContext:
        """Return the (shared, cached) SSL context for these settings."""
        return _context(self.verify, self.cafile if self.verify else None)


@functools.cache
def _context(verify: bool, cafile: str | None) -> ssl.SSLContext:
    # One context per (verify, cafile): thousands of reals share it instead of each loading CAs.
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=cafile)
