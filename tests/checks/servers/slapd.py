"""A real OpenLDAP slapd (Debian's slapd) serving ldap and ldaps on 127.0.0.1 and ::1.

The directory (dc=example,dc=com with one person) is loaded with slapadd before the server
starts; the ldaps certificate comes from the tests' throwaway CA.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme

from tests.checks.servers import Process, ServerError, free_port, listening_tcp, world_readable_dir

SUFFIX = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "ldap-s3cret"
USER_DN = f"uid=alice,ou=people,{SUFFIX}"
USER_PASSWORD = "alice-pass"

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {d}/slapd.pid
TLSCertificateFile {d}/cert.pem
TLSCertificateKeyFile {d}/key.pem
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {d}/db
access to attrs=userPassword by anonymous auth by self read by * none
access to * by * read
"""

LDIF = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,{SUFFIX}
objectClass: organizationalUnit
ou: people

dn: {USER_DN}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Example
userPassword: {USER_PASSWORD}
"""


@dataclass(frozen=True)
class Slapd:
    """Where the running slapd listens (the same ports on 127.0.0.1 and ::1)."""

    ldap: int
    ldaps: int
    cafile: str


def _binary(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if found is None:
        raise ServerError(f"{name} is not installed (Debian package slapd)")
    return found


@contextlib.contextmanager
def slapd(ca: trustme.CA) -> Iterator[Slapd]:
    """Run slapd in the foreground with a slapd.conf in a temporary directory; yield its ports."""
    with world_readable_dir("healthd-slapd-") as d:
        _write_files(d, ca)
        conf = str(d / "slapd.conf")
        loaded = subprocess.run(
            [_binary("slapadd"), "-f", conf, "-l", str(d / "data.ldif")],
            capture_output=True, check=False, cwd=d,
        )  # fmt: skip
        if loaded.returncode != 0:
            raise ServerError(f"slapadd failed:\n{loaded.stderr.decode()[-2000:]}")
        ldap, ldaps = free_port("127.0.0.1"), free_port("127.0.0.1")
        urls = " ".join(
            f"{scheme}://{host}:{port}/"
            for scheme, port in (("ldap", ldap), ("ldaps", ldaps))
            for host in ("127.0.0.1", "[::1]")
        )
        proc = Process("slapd", [_binary("slapd"), "-d", "0", "-f", conf, "-h", urls], d)
        try:
            for port in (ldap, ldaps):
                for host in ("127.0.0.1", "::1"):
                    proc.wait_until(lambda h=host, p=port: listening_tcp(h, p), f"{host} {port}")
            yield Slapd(ldap, ldaps, str(d / "ca.pem"))
        finally:
            proc.close()


def _write_files(d: Path, ca: trustme.CA) -> None:
    (d / "db").mkdir()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    (d / "data.ldif").write_text(LDIF)
    config = CONFIG.format(d=d, suffix=SUFFIX, admin=ADMIN_DN, password=ADMIN_PASSWORD)
    (d / "slapd.conf").write_text(config)
