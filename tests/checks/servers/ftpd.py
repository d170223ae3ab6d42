"""A real FTP server (pyftpdlib), run as a child process by the ftp check tests.

Usage: python ftpd.py HOST ROOT USER PASSWORD PORTFILE. It serves ROOT read-only to USER and
to anonymous, and writes the port it listens on to PORTFILE once it listens.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__)


def main(host: str, root: str, user: str, password: str, portfile: str) -> None:
    """Serve until killed."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer

    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm="elr")
    authorizer.add_anonymous(root)
    # no 3 s pause after a failed login: the tests check the reply, not the brute-force delay
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "auth_failed_timeout": 0.1})
    server = FTPServer((host, 0), handler)
    port = server.socket.getsockname()[1]
    Path(portfile + ".tmp").write_text(str(port))
    Path(portfile + ".tmp").rename(portfile)
    server.serve_forever()


@contextlib.contextmanager
def ftp_server(host: str, root: Path, user: str, password: str, workdir: Path) -> Iterator[int]:
    """Run pyftpdlib on host, port 0, serving `root`; yield the port."""
    from tests.checks.servers import Process  # here: this file also runs as a plain script

    portfile = workdir / f"ftp-{host.replace(':', '_')}.port"
    portfile.unlink(missing_ok=True)
    argv = [sys.executable, str(HERE), host, str(root), user, password, str(portfile)]
    proc = Process("pyftpdlib", argv, workdir)
    try:
        proc.wait_until(portfile.exists, "port file")
        yield int(portfile.read_text())
    finally:
        proc.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
