"""A real SIP user agent server (sipp, Debian's sip-tester) that answers OPTIONS.

sipp's built-in `uas` scenario expects INVITE, so the tests give it a two-step scenario
(receive OPTIONS, send a final answer) with the status line of their choice.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from tests.checks.servers import Process, free_port, listening_tcp, listening_udp

SCENARIO = """\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="OPTIONS responder">
  <recv request="OPTIONS" crlf="true"/>
  <send>
    <![CDATA[

      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


@contextlib.contextmanager
def sipp_uas(
    host: str, workdir: Path, *, tcp: bool = False, status: str = "200 OK"
) -> Iterator[int]:
    """Run sipp as an OPTIONS-answering UAS on host (UDP, or TCP); yield its port."""
    binary = shutil.which("sipp") or "/usr/bin/sipp"
    scenario = workdir / "options-uas.xml"
    scenario.write_text(SCENARIO.format(status=status))
    port = free_port(host, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    argv = [binary, "-sf", str(scenario), "-i", host, "-p", str(port), "-nostdin"]
    argv += ["-t", "t1" if tcp else "u1"]
    proc = Process("sipp", argv, workdir)
    try:
        if tcp:
            proc.wait_until(lambda: listening_tcp(host, port), f"tcp port {port}")
        else:
            proc.wait_until(lambda: listening_udp(port), f"udp port {port}")
        yield port
    finally:
        proc.close()
