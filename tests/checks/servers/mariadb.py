"""A real MariaDB server (Debian's mariadb-server) on 127.0.0.1 and ::1 with one SQL user.

The data directory is created by mariadb-install-db in a temporary directory; the server
listens on a port picked from the free ones (MariaDB does not accept port 0).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from tests.checks.servers import Process, ServerError, free_port, listening_tcp, world_readable_dir

USER = "healthd"
PASSWORD = "my-s3cret"
DATABASE = "healthd"

INIT = f"""\
CREATE DATABASE IF NOT EXISTS {DATABASE};
CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';
GRANT ALL ON {DATABASE}.* TO '{USER}'@'%';
CREATE TABLE IF NOT EXISTS {DATABASE}.pool (name VARCHAR(20), enabled INT);
DELETE FROM {DATABASE}.pool;
INSERT INTO {DATABASE}.pool VALUES ('web1', 1), ('web2', 0);
"""


@dataclass(frozen=True)
class MariaDB:
    """Where the running server listens (the same port on 127.0.0.1 and ::1)."""

    port: int


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or next(
            (p for d in ("/usr/sbin", "/usr/bin") if os.path.exists(p := f"{d}/{name}")), None
        )
        if found:
            return found
    raise ServerError(f"{names[0]} is not installed (Debian package mariadb-server)")


@contextlib.contextmanager
def mariadb() -> Iterator[MariaDB]:
    """Run a throwaway MariaDB in a temporary directory; yield its port."""
    user = "root" if os.geteuid() == 0 else ""
    with world_readable_dir("healthd-mariadb-") as d:
        data = d / "data"
        install = [_binary("mariadb-install-db", "mysql_install_db"), "--no-defaults",
                   f"--datadir={data}", "--auth-root-authentication-method=socket",
                   "--skip-test-db"]  # fmt: skip
        if user:
            install.append(f"--user={user}")
        done = subprocess.run(install, capture_output=True, cwd=d, check=False)
        if done.returncode != 0:
            raise ServerError(f"mariadb-install-db failed:\n{done.stdout.decode()[-2000:]}")
        (d / "init.sql").write_text(INIT)
        port = free_port("127.0.0.1")
        argv = [_binary("mariadbd", "mysqld"), "--no-defaults", f"--datadir={data}",
                f"--port={port}", "--bind-address=127.0.0.1,::1", f"--socket={d}/mysqld.sock",
                f"--pid-file={d}/mysqld.pid", f"--init-file={d}/init.sql",
                "--skip-networking=0", "--innodb-buffer-pool-size=16M",
                "--skip-log-bin", "--skip-name-resolve"]  # fmt: skip
        if user:
            argv.append(f"--user={user}")
        proc = Process("mariadbd", argv, d)
        try:
            for host in ("127.0.0.1", "::1"):
                proc.wait_until(lambda h=host: listening_tcp(h, port), f"{host} {port}")
            yield MariaDB(port)
        finally:
            proc.close()
