"""The root-only control socket: the running daemon serves its status snapshot as JSON.

The socket is /run/healthd/<config file name>.sock (HEALTHD_RUNDIR overrides the directory,
for tests), the directory mode 0700 and the socket 0600, so only root reads it. One request
per connection: the client sends `status` and a newline, the server answers one JSON document
and closes. The server asks the kernel who the peer is (SO_PEERCRED) and answers only root
and its own user; anyone else gets one line saying so. Other words name commands the daemon
registered (`ctl {json}`, runtime control): the client sends the word, a blank and one JSON
object on the line, and gets one JSON object back. The server side is asyncio; the client
side is blocking, for the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Collection, Mapping

from healthd import logs
from healthd.errors import HealthdError

DEFAULT_RUNDIR = "/run/healthd"
RUNDIR_ENV = "HEALTHD_RUNDIR"
MAX_REQUEST = 4096

log = logs.get_logger("healthd.control")

Snapshot = Callable[[], Mapping[str, object]]
Command = Callable[[Mapping[str, object]], Awaitable[Mapping[str, object]]]


class ControlError(HealthdError):
    """The control socket could not be served or queried."""


def rundir() -> str:
    """Return the directory of control sockets (HEALTHD_RUNDIR overrides /run/healthd)."""
    return os.environ.get(RUNDIR_ENV) or DEFAULT_RUNDIR


def socket_path(config_path: str) -> str:
    """Return the control socket of the daemon running the configuration file at config_path.

    Named after the file found, not after the name typed (unlike the pid file), so
    `healthd status` and `healthd -c /etc/ha.d/ldirectord.cf status` reach the same daemon.
    """
    return os.path.join(rundir(), f"{os.path.basename(config_path)}.sock")


def peer_uid(sock: socket.socket) -> int | None:
    """Return the uid of the process at the other end of a unix socket (None if unknown)."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def default_allowed() -> frozenset[int]:
    """Return the uids the control socket answers: root and the daemon's own user."""
    return frozenset({0, os.geteuid()})


def _encode(snapshot: Mapping[str, object]) -> bytes:
    return (json.dumps(snapshot, default=str, sort_keys=False) + "\n").encode()


def _in_use(path: str) -> bool:
    """Return whether something answers on the socket at path."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def _prepare(path: str) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if os.path.lexists(path):
        if _in_use(path):
            raise ControlError(f"another healthd is already serving {path}")
        os.unlink(path)


class ControlServer:
    """Serves `snapshot()` on a unix socket for as long as it is open."""

    def __init__(
        self,
        path: str,
        snapshot: Snapshot,
        commands: Mapping[str, Command] | None = None,
        *,
        allowed: Collection[int] | None = None,
    ) -> None:
        self.path = path
        self.allowed = frozenset(allowed) if allowed is not None else default_allowed()
        self._snapshot = snapshot
        self._commands = dict(commands or {})
        self._server: asyncio.Server | None = None
        self._ino: int | None = None

    async def start(self) -> None:
        """Bind the socket (0600, in a 0700 directory); replace a dead one left behind."""
        try:
            _prepare(self.path)
            self._server = await asyncio.start_unix_server(self._handle, path=self.path)
            os.chmod(self.path, 0o600)
            self._ino = os.stat(self.path).st_ino
        except OSError as exc:
            raise ControlError(f"cannot open control socket {self.path}: {exc.strerror}") from exc

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = (await reader.readline())[:MAX_REQUEST].strip()
                # read first: closing on an unread request would reset the peer, not tell it
                uid = peer_uid(writer.get_extra_info("socket"))
                if uid not in self.allowed:
                    log.warning(logs.CONTROL_REFUSED, path=self.path, uid=uid)
                    body = _encode({"error": f"refused: uid {uid} may not use {self.path}"})
                elif request in (b"", b"status"):
                    body = _encode(self._snapshot())
                else:
                    body = _encode(await self._command(request))
                writer.write(body)
                await writer.drain()
        except (OSError, TimeoutError) as exc:
            log.warning(logs.CONTROL_FAILED, path=self.path, detail=str(exc))
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _command(self, request: bytes) -> Mapping[str, object]:
        word, _, rest = request.decode(errors="replace").partition(" ")
        command = self._commands.get(word)
        if command is None:
            return {"error": f"unknown request {word}"}
        try:
            payload = json.loads(rest)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return {"error": f"malformed {word} request"}
        return await command(payload)

    async def close(self) -> None:
        """Stop serving and remove the socket, unless another process has replaced it."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._ino:
                os.unlink(self.path)


def query(path: str, timeout: float = 3.0) -> dict[str, object]:
    """Return the running daemon's snapshot; raise ControlError when it cannot be read."""
    answer = _exchange(path, b"status\n", timeout, "cannot read status from")
    if set(answer) == {"error"}:  # refused (SO_PEERCRED): say so, not an empty status
        raise ControlError(str(answer["error"]))
    return answer


def call(
    path: str, word: str, payload: Mapping[str, object], timeout: float = 10.0
) -> dict[str, object]:
    """Send one command and return its answer; raise ControlError when there is none."""
    line = f"{word} {json.dumps(payload)}\n".encode()
    return _exchange(path, line, timeout, "no answer from")


def _exchange(path: str, line: bytes, timeout: float, what: str) -> dict[str, object]:
    chunks: list[bytes] = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(line)
            while chunk := s.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ControlError(f"{what} {path}: {reason}") from exc
    try:
        data = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise ControlError(f"{what} {path}: malformed answer") from exc
    if not isinstance(data, dict):
        raise ControlError(f"{what} {path}: malformed answer")
    return data


def render(view: Mapping[str, object], fmt: str) -> str:
    """Return a status view as JSON or YAML text (plain data only, via a JSON round trip)."""
    text = json.dumps(view, indent=2, default=str)
    if fmt == "json":
        return text
    import yaml

    return str(yaml.safe_dump(json.loads(text), sort_keys=False)).rstrip()
