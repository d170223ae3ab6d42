"""A real FreeRADIUS server (Debian's freeradius) on 127.0.0.1 and ::1, from a minimal config.

One user in a `files` users file, checked by `pap`; both loopback addresses are clients with
the same secret. reject_delay is 0, so a wrong password is answered at once.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.checks.servers import Process, ServerError, free_port, listening_udp, world_readable_dir

SECRET = "radius-s3cret"
USER = "alice"
PASSWORD = "alice-pass"

CONFIG = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {d}
sbindir = /usr/sbin
logdir = {d}
raddbdir = {d}
radacctdir = {d}
name = radiusd
confdir = {d}
run_dir = {d}
libdir = /usr/lib/freeradius
dictdir = /usr/share/freeradius
pidfile = {d}/radiusd.pid
max_request_time = 5
cleanup_delay = 0
max_requests = 1024
hostname_lookups = no
log {{
  destination = stderr
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = yes
}}
thread pool {{
  start_servers = 1
  max_servers = 4
  min_spare_servers = 1
  max_spare_servers = 2
  max_requests_per_server = 0
}}
client v4 {{
  ipaddr = 127.0.0.1
  secret = {secret}
}}
client v6 {{
  ipv6addr = ::1
  secret = {secret}
}}
modules {{
  files {{
    filename = {d}/users
  }}
  pap {{
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {port}
  }}
  listen {{
    type = auth
    ipv6addr = ::1
    port = {port}
  }}
  authorize {{
    files
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
  }}
}}
"""


@dataclass(frozen=True)
class FreeRadius:
    """Where the running server listens (the same UDP port on 127.0.0.1 and ::1)."""

    port: int


def _binary() -> str:
    for name in ("freeradius", "radiusd"):
        found = shutil.which(name) or next(
            (p for p in (f"/usr/sbin/{name}",) if Path(p).exists()), None
        )
        if found:
            return found
    raise ServerError("freeradius is not installed (Debian package freeradius)")


@contextlib.contextmanager
def freeradius() -> Iterator[FreeRadius]:
    """Run FreeRADIUS in debug (foreground) mode with its own config; yield its port."""
    with world_readable_dir("healthd-radius-") as d:
        port = free_port("127.0.0.1", kind=2)  # SOCK_DGRAM
        (d / "radiusd.conf").write_text(CONFIG.format(d=d, secret=SECRET, port=port))
        (d / "users").write_text(f'{USER} Cleartext-Password := "{PASSWORD}"\n')
        for path in (d / "radiusd.conf", d / "users"):
            path.chmod(0o644)  # FreeRADIUS refuses globally writable configuration files
        proc = Process("freeradius", [_binary(), "-X", "-d", str(d), "-l", "stdout"], d)
        try:
            proc.wait_until(lambda: _ready(proc.log), "Ready to process requests")
            if not listening_udp(port):
                raise ServerError(f"freeradius does not listen on udp port {port}")
            yield FreeRadius(port)
        finally:
            proc.close()


def _ready(log: Path) -> bool:
    return "Ready to process requests" in log.read_text(errors="replace")
