"""NetlinkDriver: the kernel IPVS table over generic netlink ("IPVS" family).

It speaks netlink on its own non-blocking socket, with messages packed and parsed by
healthd.ipvs._wire (struct, no generic attribute classes): pyroute2's per-attribute Python
decoding and its asyncio socket cost milliseconds per message, which made a dump of tens of
thousands of destinations take minutes. The family lookup, the namespace entry (libc setns)
and NetlinkError are ours too, so pyroute2 is not imported at all: importing it took about
0.2 s of a start natively and 5 s in the emulated test VM.
Every kernel error becomes a one-line DriverError; the errno policy (EEXIST, ENOENT) is
healthd.ipvs.driver's, and what to change is healthd.reconcile's.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
import struct
import threading
from typing import Final

from healthd.ipvs import _wire as w
from healthd.ipvs import syncd_wire
from healthd.ipvs._wire import decode_dest, decode_service, encode
from healthd.ipvs.driver import apply_idempotent, error, validate
from healthd.ipvs.syncd_wire import SyncDaemon
from healthd.ipvs.types import Counters, Dest, DestKey, Op, ServiceEntry, ServiceKey, Table

__all__ = ["NetlinkDriver", "NetlinkError", "decode_dest", "decode_service", "encode"]

NO_IPVS: Final = "IPVS is not available in this kernel (modprobe ip_vs failed)"
NETNS_DIR: Final = "/var/run/netns"  # where `ip netns add` puts its names
CLONE_NEWNET: Final = 0x40000000
SOL_NETLINK: Final = 270
NETLINK_CAP_ACK: Final = 10  # acks without a copy of the request
RCVBUF: Final = 1 << 20
RECV_SIZE: Final = 1 << 16  # kernel: dump chunks stay under 32 KiB
YIELD_EVERY: Final = 32  # services dumped between two turns of the event loop
# seconds one request may wait for its whole answer; the kernel answers at once, so running
# out means a reply was lost (e.g. ENOBUFS on a full socket): fail it, start a fresh socket
REPLY_TIMEOUT: Final = 15.0


class NetlinkError(Exception):
    """The kernel refused a request: `code` is its errno (the driver's DriverError says it)."""

    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))
        self.code = code


# --- the socket ----------------------------------------------------------------------------


def _new_socket() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 16)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.bind((0, 0))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _socket_in(netns: str) -> socket.socket:
    """Return a netlink socket created inside the named network namespace.

    A socket keeps the namespace it was created in, so a short-lived thread enters the
    namespace (setns affects only the calling thread), creates it and ends.
    """
    path = netns if "/" in netns else os.path.join(NETNS_DIR, netns)
    result: list[socket.socket | OSError] = []

    def enter() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err), path)
            finally:
                os.close(fd)
            result.append(_new_socket())
        except OSError as exc:
            result.append(exc)

    thread = threading.Thread(target=enter, name="healthd-netns")
    thread.start()
    thread.join()
    if isinstance(result[0], OSError):
        raise result[0]
    return result[0]


async def _modprobe(module: str) -> bool:
    """Return True if `modprobe module` ran and succeeded."""
    try:
        proc = await asyncio.create_subprocess_exec(
            "modprobe",
            module,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return False
    return await proc.wait() == 0


class _Channel:
    """One netlink socket with the IPVS family id: request → replies, with sequence numbers."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.family = 0
        self._seq = 0

    def next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def replies(self, seq: int) -> list[bytes]:
        """Return the bodies answering request `seq`; raise NetlinkError on a kernel error.

        Ends at the ack (NLMSG_ERROR 0), the error, or NLMSG_DONE of a dump; messages left
        from other requests are skipped.
        """
        bodies: list[bytes] = []
        while True:
            data = await self.recv()
            for kind, _flags, got, body in w.split(data):
                if got != seq:
                    continue
                if kind == w.NLMSG_ERROR:
                    code = w.error_code(body)
                    if code:
                        raise NetlinkError(code)
                    return bodies
                if kind == w.NLMSG_DONE:
                    code = w.error_code(body) if len(body) >= 4 else 0
                    if code:
                        raise NetlinkError(code)
                    return bodies
                bodies.append(body)
            if not data:
                raise NetlinkError(errno.EIO)

    async def recv(self) -> bytes:
        """Return the next datagram, at once when one is queued (the usual case).

        The kernel answers a request inside the send, so the reply is nearly always there
        already; reading it without a turn of the event loop keeps an op's cost flat when
        the loop is crowded with checks (each turn then costs a whole batch of them).
        """
        try:
            return self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return await asyncio.get_running_loop().sock_recv(self.sock, RECV_SIZE)

    async def request(self, cmd: int, payload: bytes, *, dump: bool = False) -> list[bytes]:
        seq = self.next_seq()
        flags = w.NLM_F_REQUEST | (w.NLM_F_DUMP if dump else w.NLM_F_ACK)
        await self.send(w.message(self.family, cmd, payload, seq, flags))
        return await self.replies(seq)

    async def resolve(self) -> None:
        """Look up the IPVS family id (NetlinkError ENOENT when ip_vs is not loaded)."""
        seq = self.next_seq()
        await self.send(w.family_request(seq))
        for body in await self.replies(seq):
            found = w.family_id(body)
            if found is not None:
                self.family = found
                return
        raise NetlinkError(errno.ENOENT)


# --- the driver ----------------------------------------------------------------------------


class NetlinkDriver:
    """IPVSDriver over the kernel's generic-netlink IPVS family.

    `netns` names a network namespace (as `ip netns` does, or a path): the socket is opened
    inside it, so the driver sees that namespace's IPVS table. The socket opens on first use;
    the kernel module ip_vs is loaded once with modprobe if the family is missing.
    """

    def __init__(self, *, netns: str | None = None, reply_timeout: float = REPLY_TIMEOUT) -> None:
        self.netns = netns
        self.reply_timeout = reply_timeout
        self._chan: _Channel | None = None
        self._lock = asyncio.Lock()

    @property
    def _sock(self) -> socket.socket | None:
        return self._chan.sock if self._chan is not None else None

    async def _open(self) -> _Channel:
        if self._chan is not None:
            return self._chan
        try:
            chan = await self._connect()
        except NetlinkError as exc:
            if exc.code != errno.ENOENT:
                raise error(None, exc.code) from None
            # kernel: the "IPVS" family appears only once ip_vs is loaded; try that once
            if not await _modprobe("ip_vs"):
                raise error(None, errno.ENOENT, NO_IPVS) from None
            try:
                chan = await self._connect()
            except NetlinkError:
                raise error(None, errno.ENOENT, NO_IPVS) from None
        except OSError as exc:
            raise error(None, exc.errno or errno.EIO) from None
        self._chan = chan
        return chan

    async def _connect(self) -> _Channel:
        if self.netns:
            sock = await asyncio.to_thread(_socket_in, self.netns)
        else:
            sock = _new_socket()
        chan = _Channel(sock)
        try:
            await chan.resolve()
        except BaseException:
            sock.close()
            raise
        return chan

    async def _request(self, cmd: int, payload: bytes, *, dump: bool = False) -> list[bytes]:
        """Send one IPVS command and return its reply bodies; raise NetlinkError."""
        chan = await self._open()
        try:
            async with asyncio.timeout(self.reply_timeout):
                return await chan.request(cmd, payload, dump=dump)
        except NetlinkError:
            raise
        except TimeoutError:
            self._drop()  # the answer may still come: never read it as the next one's
            raise NetlinkError(errno.ETIMEDOUT) from None
        except BaseException:
            # cancelled or failed mid-answer: the socket may hold a half-read reply or a
            # running dump, so the next request starts on a fresh socket
            self._drop()
            raise

    def _drop(self) -> None:
        if self._chan is not None:
            self._chan.sock.close()
            self._chan = None

    async def dump(self) -> Table:
        """Return the whole table in the kernel's order, with counters."""
        async with self._lock:
            try:
                return Table(await self._entries())
            except NetlinkError as exc:
                raise error(None, exc.code) from None
            except OSError as exc:
                raise error(None, exc.errno or errno.EIO) from None
            except (struct.error, ValueError, LookupError) as exc:
                # a reply we cannot read is a kernel error like any other: logged, retried
                self._drop()
                text = f"unreadable IPVS reply from the kernel: {exc!r}"
                raise error(None, errno.EBADMSG, text) from None

    async def _entries(self) -> dict[ServiceKey, ServiceEntry]:
        # kernel: one dump at a time per netlink socket (a second one gets EBUSY), so the
        # destination dumps go one service after another
        entries: dict[ServiceKey, ServiceEntry] = {}
        for body in await self._request(w.CMD_GET_SERVICE, b"", dump=True):
            nested = w.reply_attr(body, w.ATTR_SERVICE)
            if nested is None:
                continue
            service, counters = decode_service(nested)
            key = w.attr(w.ATTR_SERVICE, w.key_attrs(service.key))
            dests: dict[DestKey, Dest] = {}
            dest_counters: dict[DestKey, Counters] = {}
            for reply in await self._request(w.CMD_GET_DEST, key, dump=True):
                found = w.reply_attr(reply, w.ATTR_DEST)
                if found is not None:
                    dest, dc = decode_dest(found, service.key.family)
                    dests[dest.key] = dest
                    dest_counters[dest.key] = dc
            entries[service.key] = ServiceEntry(service, dests, counters, dest_counters)
            if len(entries) % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a long dump still lets the loop run
        return entries

    async def apply(self, op: Op) -> None:
        """Apply one op with the shared errno policy (see healthd.ipvs.driver)."""
        async with self._lock:
            await apply_idempotent(self.apply_raw, op)

    async def apply_raw(self, op: Op) -> None:
        """Send op as one kernel command, raising DriverError with the kernel's errno."""
        validate(op)
        try:
            await self._request(*encode(op))
        except NetlinkError as exc:
            raise error(op, exc.code) from None
        except OSError as exc:
            raise error(op, exc.errno or errno.EIO) from None

    # --- the connection sync daemon (IPVS_CMD_*_DAEMON) ---------------------------------

    async def daemons(self) -> list[SyncDaemon]:
        """Return the sync daemons running in this namespace (master, backup, or none)."""
        bodies = await self._daemon_request(syncd_wire.CMD_GET_DAEMON, b"", dump=True)
        return sorted(d for b in bodies if (d := syncd_wire.decode(b)) is not None)

    async def start_daemon(self, daemon: SyncDaemon) -> None:
        """Start one sync daemon; EEXIST when one of that role already runs."""
        await self._daemon_request(*syncd_wire.start(daemon))

    async def stop_daemon(self, role: str) -> None:
        """Stop the sync daemon of `role`; ESRCH when none runs."""
        await self._daemon_request(*syncd_wire.stop(role))

    async def _daemon_request(self, cmd: int, payload: bytes, *, dump: bool = False) -> list[bytes]:
        async with self._lock:
            try:
                return await self._request(cmd, payload, dump=dump)
            except NetlinkError as exc:
                raise error(None, exc.code) from None
            except OSError as exc:
                raise error(None, exc.errno or errno.EIO) from None

    async def aclose(self) -> None:
        """Close the netlink socket."""
        self._drop()
