"""service=http, https and http_proxy: one request, a 2xx final status, and `receive` in the body.

Speaks HTTP/1.1 itself through checks._httpclient (one connection per request, bounded reads,
a total timeout): CPU per check is a stated target and aiohttp costs about twice as much per
request, and importing it a tenth of a second at every start.
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from re import Pattern
from typing import TYPE_CHECKING, ClassVar, Final, Self

from checks import _httpclient as client
from checks._util import TLSSettings, classify, compile_receive
from checks.base import CheckContext, CheckOptionError, Reason, Result, Stopwatch, Target, timed
from checks.deadline import within

if TYPE_CHECKING:
    from yarl import URL  # imported when a request needs parsing (_url), not for a plain path

MAX_BODY: Final = 1 << 20  # bytes of body read for the receive test; the rest is ignored
MAX_REDIRECTS: Final = 7  # ldirectord: LWP's default max_redirect
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_HEADERS: Final = {"User-Agent": "healthd", "Accept": "*/*"}
_NO_ANSWER: Final = "server closed the connection without answering"


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one target's check fetches first, worked out once: most runs need nothing more."""

    url: URL | None  # None for a plain request sent direct: parsed only if it redirects
    proxy: URL | None
    headers: Mapping[str, str]  # for the configured origin: with the virtualhost, if any
    direct: client.Direct | None  # the first request ready to send, when it can go direct


@dataclass(frozen=True, slots=True)
class HTTPCheck:
    """GET or HEAD `request` on the real; up on a 2xx final status and a matching body."""

    kind: ClassVar[str] = "http"
    scheme: ClassVar[str] = "http"
    request: str  # the path (without its leading slash), or an absolute URL
    method: str
    receive: Pattern[str] | None
    virtualhost: str | None
    tls: TLSSettings
    timeout: float
    _plans: dict[Target, _Plan] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check from request, receive, httpmethod, virtualhost and the tls_* options."""
        method = (options.get("httpmethod") or "GET").upper()
        if method not in ("GET", "HEAD"):
            raise CheckOptionError("httpmethod", "httpmethod must be GET or HEAD")
        request = options.get("request") or "/"
        # ldirectord: one leading "/" is dropped, then the rest is appended to scheme://rip:port/
        request = request.removeprefix("/")
        cls._validate_request(request)
        return cls(
            request=request,
            method=method,
            receive=compile_receive(options),
            virtualhost=options.get("virtualhost") or None,
            tls=TLSSettings.from_options(options),
            timeout=ctx.timeout,
        )

    @classmethod
    def _validate_request(cls, request: str) -> None:
        if _is_absolute(request):
            _parse_url(request)

    def url(self, target: Target) -> URL:
        """Return the URL fetched for this target (a full URL in `request` is used as is)."""
        if _is_absolute(self.request):
            return _parse_url(self.request)
        return _real_url(self.scheme, target.host, target.port, self.request)

    def proxy(self, target: Target) -> URL | None:
        return None

    def _host_header(self, target: Target) -> str | None:
        # ldirectord: Host is virtualhost, else the real's address without a port
        if self.virtualhost:
            return self.virtualhost
        return None if _is_absolute(self.request) else target.host

    async def check(self, target: Target) -> Result:
        """Fetch the URL, following redirects, and judge the final answer."""
        sw = timed()
        try:
            async with within(self.timeout):
                return await self._fetch(target, sw)
        except client.NoAnswerError:
            return sw.down(Reason.RESET, _NO_ANSWER)
        except client.ProtocolError as exc:
            return sw.down(Reason.PROTOCOL_ERROR, str(exc))
        except (OSError, TimeoutError, ValueError) as exc:
            reason, detail = classify(exc)
            if reason is Reason.TIMEOUT:
                detail = f"no complete answer within {self.timeout:g}s"
            return sw.down(reason, detail)

    async def _fetch(self, target: Target, sw: Stopwatch) -> Result:
        try:
            plan = self._plans[target]
        except KeyError:
            plan = self._plans[target] = self._plan(target)
        url = plan.url
        for hop in range(MAX_REDIRECTS + 1):
            if hop == 0 and plan.direct is not None:
                resp = await client.fetch_direct(plan.direct, limit=MAX_BODY)
            else:
                assert url is not None  # only the first hop may go direct without one
                # Host header and SNI name go to the configured origin only, never to another
                # host a redirect points at (LWP drops Host on every redirect; we keep it)
                same = hop == 0 or url.origin() == self.url(target).origin()
                resp = await client.fetch(
                    self.method,
                    url,
                    headers=plan.headers if same else _HEADERS,
                    limit=MAX_BODY,
                    tls=self.tls.context(),
                    server_hostname=self.tls.hostname if same else None,
                    proxy=plan.proxy,
                )
            location = resp.headers.get("location")
            if resp.status in _REDIRECTS and location and hop < MAX_REDIRECTS:
                url = (url or self.url(target)).join(_url(location))
                continue
            return self._judge(resp.status, resp.reason, _decode(resp.body, resp.charset), sw)
        raise AssertionError("unreachable: the last hop always returns")  # pragma: no cover

    def _plan(self, target: Target) -> _Plan:
        """Work out once per target what its first request is (most runs need nothing more)."""
        proxy = self.proxy(target)
        vhost = self._host_header(target) if proxy is None else None  # ldirectord: none for proxies
        headers = {**_HEADERS, "Host": vhost} if vhost else _HEADERS
        if proxy is None and self.scheme == "http" and not _is_absolute(self.request):
            plain = client.direct_plain(
                self.method, target.address, target.port, self.request, headers
            )
            if plain is not None:
                return _Plan(None, None, headers, plain)
        url = self.url(target)
        prepared = client.direct(self.method, url, headers) if proxy is None else None
        return _Plan(url, proxy, headers, prepared)

    def _judge(self, status: int, reason: str, body: str, sw: Stopwatch) -> Result:
        status_line = f"{status} {reason}".strip()
        # ldirectord: LWP's is_success, i.e. any 2xx after redirects
        if not 200 <= status < 300:
            return sw.down(Reason.STATUS_MISMATCH, f"got {status_line}, want 2xx")
        if self.receive is not None and self.receive.search(body) is None:
            excerpt = body[:60].replace("\n", " ")
            detail = f"body does not match {self.receive.pattern!r} (starts {excerpt!r})"
            return sw.down(Reason.BODY_MISMATCH, detail)
        return sw.up(status_line)


@dataclass(frozen=True, slots=True)
class HTTPSCheck(HTTPCheck):
    """As http over TLS; virtualhost is also the SNI name (ldirectord sends no SNI)."""

    kind: ClassVar[str] = "https"
    scheme: ClassVar[str] = "https"


@dataclass(frozen=True, slots=True)
class HTTPProxyCheck(HTTPCheck):
    """The real is an HTTP proxy; `request` is the absolute URL fetched through it."""

    kind: ClassVar[str] = "http_proxy"
    scheme: ClassVar[str] = "http"

    @classmethod
    def _validate_request(cls, request: str) -> None:
        if not _is_absolute(request):
            msg = 'service=http_proxy needs an absolute URL in request, e.g. "http://example.com/"'
            raise CheckOptionError("request", msg)
        _parse_url(request)

    def url(self, target: Target) -> URL:
        return _parse_url(self.request)

    def proxy(self, target: Target) -> URL | None:
        """Return the real as the proxy URL."""
        return _url(f"http://{target.host}:{target.port}/")


@functools.lru_cache(maxsize=1 << 16)
def _real_url(scheme: str, host: str, port: int, request: str) -> URL:
    # parsed once per real: building a URL costs more than the rest of a request's set-up
    return _url(f"{scheme}://{host}:{port}/{request}")


def _is_absolute(request: str) -> bool:
    return request.lower().startswith(("http://", "https://"))


def _url(text: str) -> URL:
    """Parse `text` with yarl, imported on first use."""
    from yarl import URL

    return URL(text)


def _parse_url(text: str) -> URL:
    try:
        url = _url(text)
    except ValueError as exc:
        raise CheckOptionError("request", f"invalid URL {text!r}: {exc}") from exc
    if not url.host:
        raise CheckOptionError("request", f"invalid URL {text!r}: no host")
    return url


def _decode(body: bytes, charset: str | None) -> str:
    """Decode a body leniently in its charset (UTF-8 when absent or unknown)."""
    charset = charset or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return body.decode(charset, "replace")
