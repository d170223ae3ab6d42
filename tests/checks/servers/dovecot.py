"""A real dovecot (imap, imaps, pop3, pop3s) on 127.0.0.1 and ::1 with one passwd-file user."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme

from tests.checks.servers import Process, free_port, listening_tcp, world_readable_dir

USER = "alice"
PASSWORD = "s3cret-Pass"

CONFIG = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1, ::1
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8 ::1/128
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%u
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
"""


@dataclass(frozen=True)
class Dovecot:
    """Where the running dovecot listens (the same ports on 127.0.0.1 and ::1)."""

    imap: int
    imaps: int
    pop3: int
    pop3s: int
    cafile: str


@contextlib.contextmanager
def dovecot(ca: trustme.CA) -> Iterator[Dovecot]:
    """Run dovecot in the foreground with its own config; yield its ports."""
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    with world_readable_dir("healthd-dovecot-") as d:
        ports = {name: free_port("127.0.0.1") for name in ("imap", "imaps", "pop3", "pop3s")}
        _write_files(d, ca, ports)
        proc = Process("dovecot", [binary, "-F", "-c", str(d / "dovecot.conf")], d)
        try:
            for port in ports.values():
                for host in ("127.0.0.1", "::1"):
                    proc.wait_until(lambda h=host, p=port: listening_tcp(h, p), f"{host} {port}")
            yield Dovecot(cafile=str(d / "ca.pem"), **ports)
        finally:
            proc.close()


def _write_files(d: Path, ca: trustme.CA, ports: dict[str, int]) -> None:
    for sub in ("run", "state", "mail", "home"):
        (d / sub).mkdir(mode=0o777)
        (d / sub).chmod(0o777)
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    (d / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    (d / "dovecot.conf").write_text(CONFIG.format(d=d, **ports))
