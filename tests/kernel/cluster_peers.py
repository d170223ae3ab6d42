"""The processes of the cluster test's namespaces: real servers and the client.

python -m tests.kernel.cluster_peers serve NAME STATE PORT HEALTH_PORT...
    A real server: PORT answers each line with "NAME LINE"; each HEALTH_PORT accepts
    connections (connect checks) and stops listening while STATE/NAME.PORT.fail exists.
python -m tests.kernel.cluster_peers load ADDRESS PORT UNTIL
    The client: one new connection per request (a new source port each), one line out,
    one line back, until the file UNTIL exists; prints one JSON list of
    [wall time, ok, answer or error] at the end.
python -m tests.kernel.cluster_peers hold ADDRESS PORT COUNT GO
    COUNT connections opened at once and kept; one line each now, printed as JSON
    (local port, answer); then, once the file GO exists, one more line on each of the
    same connections, printed the same way (an error in place of a lost answer).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path

TIMEOUT = 2.0  # seconds a request may take (the emulated VM is slow)
HOLD_TIMEOUT = 30.0  # an established connection may wait this long through a failover


async def _answer(name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            writer.write(f"{name} {line.decode().strip()}\n".encode())
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def serve(name: str, state: Path, port: int, health: list[int]) -> None:
    await asyncio.start_server(lambda r, w: _answer(name, r, w), "0.0.0.0", port)
    servers: dict[int, asyncio.Server | None] = dict.fromkeys(health)
    print("ready", flush=True)
    while True:
        for hp, server in servers.items():
            failing = (state / f"{name}.{hp}.fail").exists()
            if failing and server is not None:
                server.close()
                servers[hp] = None
            elif not failing and server is None:
                servers[hp] = await asyncio.start_server(_accept, "0.0.0.0", hp, reuse_address=True)
        await asyncio.sleep(0.1)


def _request(address: str, port: int) -> tuple[bool, str]:
    try:
        with socket.create_connection((address, port), timeout=TIMEOUT) as sock:
            sock.sendall(b"hello\n")
            answer = sock.makefile().readline().strip()
    except OSError as exc:
        return False, type(exc).__name__
    return bool(answer), answer or "no answer"


def load(address: str, port: int, until: Path, least: int) -> None:
    results: list[list[object]] = []
    print("ready", flush=True)
    while not until.exists() or len(results) < least:
        started = time.time()
        ok, answer = _request(address, port)
        results.append([started, ok, answer])
    print(json.dumps(results), flush=True)


def _exchange(sock: socket.socket) -> str:
    try:
        sock.sendall(b"again\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(256)
            if not chunk:
                return "closed"
            data += chunk
    except OSError as exc:
        return type(exc).__name__
    return data.decode().strip()


def hold(address: str, port: int, count: int, go: Path) -> None:
    socks = [socket.create_connection((address, port), timeout=TIMEOUT) for _ in range(count)]
    print(json.dumps([[s.getsockname()[1], _exchange(s)] for s in socks]), flush=True)
    while not go.exists():
        time.sleep(0.1)
    for s in socks:
        s.settimeout(HOLD_TIMEOUT)
    print(json.dumps([[s.getsockname()[1], _exchange(s)] for s in socks]), flush=True)


def main(argv: list[str]) -> None:
    match argv:
        case ["serve", name, state, port, *health]:
            asyncio.run(serve(name, Path(state), int(port), [int(h) for h in health]))
        case ["load", address, port, until, least]:
            load(address, int(port), Path(until), int(least))
        case ["hold", address, port, count, go]:
            hold(address, int(port), int(count), Path(go))
        case _:
            raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
