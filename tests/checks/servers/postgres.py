"""A real PostgreSQL server (Debian's postgresql) on 127.0.0.1 and ::1 with password auth.

initdb and postgres refuse to run as root, so both run as the `postgres` system user when
the tests run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.checks.servers import (
    START_TIMEOUT,
    Process,
    ServerError,
    free_port,
    listening_tcp,
    world_readable_dir,
)

USER = "healthd"
PASSWORD = "pg-s3cret"
DATABASE = "healthd"
BINDIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class Postgres:
    """Where the running server listens (the same port on 127.0.0.1 and ::1)."""

    port: int


def _bindir() -> Path:
    for candidate in BINDIRS:
        if Path(candidate, "postgres").exists():
            return Path(candidate)
    found = shutil.which("postgres")
    if found is None:
        raise ServerError("postgres is not installed (Debian package postgresql)")
    return Path(found).resolve().parent


def _as_postgres() -> list[str]:
    """Return the command prefix that drops root to the postgres user (nothing if not root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """Run a throwaway cluster in a temporary directory; yield its port."""
    bindir = _bindir()
    with world_readable_dir("healthd-pg-") as d:
        data = d / "data"
        data.mkdir()
        (d / "pw").write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (d, data, d / "pw"):
                os.chown(path, user.pw_uid, user.pw_gid)
        subprocess.run(
            [*_as_postgres(), str(bindir / "initdb"), "-D", str(data), "-U", USER,
             f"--pwfile={d / 'pw'}", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, cwd=d,
        )  # fmt: skip
        port = free_port("127.0.0.1")
        argv = [*_as_postgres(), str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                "-c", "listen_addresses=127.0.0.1,::1", "-c", f"unix_socket_directories={d}",
                "-c", "fsync=off"]  # fmt: skip
        proc = Process("postgres", argv, d)
        try:
            for host in ("127.0.0.1", "::1"):
                proc.wait_until(lambda h=host: listening_tcp(h, port), f"{host} {port}")
            _create_database(bindir, d, port)
            yield Postgres(port)
        finally:
            proc.close()


def _create_database(bindir: Path, d: Path, port: int) -> None:
    """Create the test database, retrying while the server is still starting up.

    postgres listens before it accepts logins: until recovery ends it answers "the database
    system is starting up".
    """
    env = dict(os.environ, PGPASSWORD=PASSWORD)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        done = subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
            capture_output=True, env=env, cwd=d,
        )  # fmt: skip
        if done.returncode == 0:
            return
        error = done.stderr.decode(errors="replace").strip()
        if "starting up" not in error or time.monotonic() > deadline:
            raise ServerError(f"createdb failed: {error}")
        time.sleep(0.1)
