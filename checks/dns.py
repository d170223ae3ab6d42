"""service=dns: ask the real for an A record (or a PTR when `request` is an address).

Over UDP (retried over TCP when the answer is truncated) or TCP, as the virtual's protocol
says. The query name is used as written: no resolv.conf search domains. Needs dnspython
(the `protocols` extra), imported when a configuration uses this check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

try:
    import dns.asyncbackend
    import dns.asyncquery
    import dns.exception
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdatatype
    import dns.reversename
except ModuleNotFoundError as exc:  # name the package to install, not its import name
    raise ModuleNotFoundError(str(exc), name="dnspython") from exc

from checks._util import classify, compile_receive
from checks.base import (
    CheckContext,
    CheckOptionError,
    Reason,
    Result,
    Stopwatch,
    Target,
    timed,
)


@dataclass(frozen=True, slots=True)
class DNSCheck:
    """Up when an A address or PTR name in the answer matches receive (any one, if unset)."""

    kind: ClassVar[str] = "dns"
    qname: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    receive: re.Pattern[str] | None
    timeout: float

    @classmethod
    def from_options(cls, options: Mapping[str, str], ctx: CheckContext) -> Self:
        """Build the check from request (a name, or an address for a PTR) and receive."""
        # ldirectord: the request loses its leading "/"; an address means a reverse lookup
        request = options.get("request", "").removeprefix("/").strip()
        if not request:
            raise CheckOptionError("request", "the dns check needs a request: the name to look up")
        try:
            address = ipaddress.ip_address(request)
        except ValueError:
            address = None
        try:
            if address is not None:
                qname, rdtype = dns.reversename.from_address(str(address)), dns.rdatatype.PTR
            else:
                qname, rdtype = dns.name.from_text(request), dns.rdatatype.A
        except dns.exception.DNSException as exc:
            raise CheckOptionError("request", f"invalid name {request!r}: {exc}") from exc
        return cls(qname, rdtype, compile_receive(options), ctx.timeout)

    async def check(self, target: Target) -> Result:
        """Send one query and look for a matching record in the answer."""
        sw = timed()
        query = dns.message.make_query(self.qname, self.rdtype)
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._ask(query, target)
        except (TimeoutError, dns.exception.Timeout):
            return sw.down(Reason.TIMEOUT, f"no answer within {self.timeout:g}s")
        except OSError as exc:
            reason, detail = classify(exc)
            return sw.down(reason, detail)
        except dns.exception.DNSException as exc:
            return sw.down(Reason.PROTOCOL_ERROR, str(exc) or type(exc).__name__)
        return self._judge(sw, response)

    async def _ask(self, query: dns.message.Message, target: Target) -> dns.message.Message:
        host, port = str(target.address), target.port
        if target.protocol == "tcp":
            return await dns.asyncquery.tcp(query, host, timeout=self.timeout, port=port)
        # A connected UDP socket, so an ICMP port-unreachable reports `refused` at once
        family = socket.AF_INET6 if target.address.version == 6 else socket.AF_INET
        backend = dns.asyncbackend.get_default_backend()
        sock = await backend.make_socket(  # type: ignore[no-untyped-call]
            family, socket.SOCK_DGRAM, 0, None, (host, port)
        )
        async with sock:
            response, _ = await dns.asyncquery.udp_with_fallback(
                query, host, timeout=self.timeout, port=port, udp_sock=sock
            )
        return response

    def _judge(self, sw: Stopwatch, response: dns.message.Message) -> Result:
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            return sw.down(Reason.STATUS_MISMATCH, f"{dns.rcode.to_text(rcode)} for {self.qname}")
        found = [
            rdata.to_text().rstrip(".")  # Net::DNS's ptrdname has no trailing dot
            for rrset in response.answer
            if rrset.rdtype == self.rdtype
            for rdata in rrset
        ]
        if not found:
            return sw.down(Reason.BODY_MISMATCH, f"no {self.rdtype.name} record for {self.qname}")
        # ldirectord: an empty receive is always down; healthd takes any answer as up
        for text in found:
            if self.receive is None or self.receive.search(text):
                return sw.up(f"{self.qname} {self.rdtype.name} {text}")
        pattern = self.receive.pattern if self.receive else ""
        return sw.down(Reason.BODY_MISMATCH, f"{', '.join(found)} does not match {pattern!r}")
