"""checktype=ping: loopback echo on IPv4 and IPv6, and timeouts inside a private netns.

Nothing is ever pinged off this machine: the no-reply cases run in a network namespace the
test creates, where 192.0.2.0/24 sits on a veth pair with nobody at the other end.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import checks._icmp
from checks._icmp import PingNotPermitted, checksum, echo_request, open_socket, parse_reply
from checks.base import CheckContext, CheckOptionError, Reason, Status
from checks.ping import PingCheck
from tests.checks._support import make_target


def _icmp_allowed() -> bool:
    try:
        sock, _ = open_socket(4)
    except (PingNotPermitted, OSError):
        return False
    sock.close()
    return True


needs_icmp = pytest.mark.skipif(not _icmp_allowed(), reason="ICMP sockets not permitted")


def ping(count: int = 1, timeout: float = 0.5) -> PingCheck:
    return PingCheck.from_options({"checkcount": str(count)}, CheckContext(timeout=timeout))


@needs_icmp
async def test_loopback_answers(host) -> None:
    result = await ping().check(make_target(host, 0))
    assert (result.status, result.reason) == (Status.UP, Reason.OK)
    assert result.detail == f"echo reply from {host} (attempt 1/1)"


@needs_icmp
async def test_many_concurrent_pings_share_one_socket_and_all_match(host) -> None:
    hosts = [f"127.0.0.{i}" for i in range(1, 40)] if ":" not in host else [host] * 20
    results = await asyncio.gather(*(ping().check(make_target(h, 0)) for h in hosts))
    assert [r.status for r in results] == [Status.UP] * len(hosts)
    # the shared socket is closed once nobody waits
    version = 6 if ":" in host else 4
    assert checks._icmp.pinger(version)._sock is None


def test_checksum_and_request_layout() -> None:
    assert checksum(b"\x00\x00") == 0xFFFF
    assert checksum(b"\x45\x00\x00\x1c") == (~(0x4500 + 0x001C)) & 0xFFFF
    packet = echo_request(4, 0x1234, 7)
    kind, code, _, ident, seq = struct.unpack_from("!BBHHH", packet)
    assert (kind, code, ident, seq) == (8, 0, 0x1234, 7)
    assert checksum(packet) == 0  # a valid checksum sums to zero
    assert echo_request(6, 1, 2)[0] == 128


def test_parse_reply() -> None:
    reply = struct.pack("!BBHHH", 0, 0, 0, 0x1234, 9) + b"data"
    ip_header = bytes([0x45]) + bytes(19)
    assert parse_reply(4, ip_header + reply, raw=True) == (0x1234, 9)
    assert parse_reply(4, reply, raw=False) == (0x1234, 9)
    assert parse_reply(4, ip_header + echo_request(4, 1, 1), raw=True) is None  # a request
    assert parse_reply(6, struct.pack("!BBHHH", 129, 0, 0, 5, 6), raw=True) == (5, 6)
    assert parse_reply(6, b"\x81\x00", raw=True) is None  # truncated


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_bad_checkcount(value) -> None:
    with pytest.raises(CheckOptionError) as info:
        PingCheck.from_options({"checkcount": value}, CheckContext(timeout=1))
    assert info.value.option == "checkcount"


def test_checkcount_defaults_to_one() -> None:
    assert PingCheck.from_options({}, CheckContext(timeout=1)).count == 1


async def test_without_sockets_the_ping_command_is_used(monkeypatch, tmp_path: Path) -> None:
    def refuse(version: int):
        raise PingNotPermitted("ICMP sockets are not permitted")

    monkeypatch.setattr(checks._icmp, "open_socket", refuse)
    log = tmp_path / "args"
    fake = tmp_path / "ping"
    fake.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\nfor last; do :; done\n[ "$last" = 127.0.0.1 ]\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    up = await ping(count=2).check(make_target("127.0.0.1", 0))
    down = await ping().check(make_target("::1", 0))
    assert (up.status, down.status) == (Status.UP, Status.DOWN)
    assert down.reason == Reason.TIMEOUT
    assert log.read_text().splitlines() == [
        "-4 -n -q -c 2 -W 1 127.0.0.1",
        "-6 -n -q -c 1 -W 1 ::1",
    ]


async def test_without_sockets_or_command_is_exec_failed(monkeypatch, tmp_path) -> None:
    def refuse(version: int):
        raise PingNotPermitted("ICMP sockets are not permitted")

    monkeypatch.setattr(checks._icmp, "open_socket", refuse)
    monkeypatch.setenv("PATH", str(tmp_path))
    result = await ping().check(make_target("127.0.0.1", 0))
    assert (result.status, result.reason) == (Status.DOWN, Reason.EXEC_FAILED)
    assert "no ping command" in result.detail


# --- inside a private network namespace ---------------------------------------------------

NETNS_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, socket, subprocess, sys
    from ipaddress import ip_address
    from checks.base import CheckContext, Target
    from checks.ping import PingCheck

    def sh(*args):
        subprocess.run(args, check=True)

    sh("ip", "link", "set", "lo", "up")
    # A veth pair whose far end has no address: ARP for 192.0.2.2 is never answered.
    sh("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    sh("ip", "addr", "add", "192.0.2.1/24", "dev", "v0")
    sh("ip", "addr", "add", "2001:db8::1/64", "dev", "v0", "nodad")
    sh("ip", "link", "set", "v1", "up")
    sh("ip", "link", "set", "v0", "up")
    if sys.argv[1] == "dgram":
        # Let root use unprivileged ICMP sockets here, and forbid raw ones in this process.
        with open("/proc/sys/net/ipv4/ping_group_range", "w") as f:
            f.write("0 0")
        real_socket = socket.socket
        def no_raw(family=-1, type=-1, proto=-1, fileno=None):
            if type == socket.SOCK_RAW:
                raise PermissionError(1, "Operation not permitted")
            return real_socket(family, type, proto, fileno)
        socket.socket = no_raw

    async def main():
        out = {}
        for name, addr, count in [
            ("silent", "192.0.2.2", 2), ("noroute", "198.51.100.1", 1),
            ("silent6", "2001:db8::2", 1), ("noroute6", "2001:db8:ffff::1", 1),
            ("lo4", "127.0.0.1", 1), ("lo6", "::1", 1),
        ]:
            check = PingCheck.from_options({"checkcount": str(count)}, CheckContext(timeout=0.2))
            r = await check.check(Target(ip_address(addr), 0))
            out[name] = [r.status.value, r.reason, r.detail]
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def _netns_usable() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = ["unshare", "-n", "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _netns_usable(), reason="needs root, unshare and veth interfaces")
@pytest.mark.parametrize("mode", ["raw", "dgram"])
def test_in_a_private_netns(mode, tmp_path: Path) -> None:
    script = tmp_path / "netns_ping.py"
    script.write_text(NETNS_SCRIPT)
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, str(script), mode],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["silent"][:2] == ["down", "timeout"]
    assert out["silent"][2] == "no echo reply in 2 attempt(s) of 0.2s"
    assert out["noroute"][:2] == ["down", "unreachable"]
    assert out["silent6"][:2] == ["down", "timeout"]
    assert out["noroute6"][:2] == ["down", "unreachable"]
    assert out["lo4"][:2] == ["up", "ok"]
    assert out["lo6"][:2] == ["up", "ok"]


@needs_icmp
def test_raw_sockets_only_see_echo_replies(host) -> None:
    version = 6 if ":" in host else 4
    sock, raw = open_socket(version)
    with sock:
        if not raw:
            pytest.skip("datagram ICMP sockets are filtered by the kernel anyway")
        sock.settimeout(1)
        sock.sendto(echo_request(version, 0x4242, 1), (host, 0))
        data, _ = sock.recvfrom(2048)
    # Unfiltered, our own echo request to loopback would arrive first.
    assert parse_reply(version, data, raw=True) == (0x4242, 1)
