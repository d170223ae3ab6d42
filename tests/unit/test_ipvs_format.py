"""ipvsadm -Sn text, its ordering quirks, and the json/yaml data form of a table."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
from ipaddress import ip_address

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from healthd.cli import main
from healthd.commands.ipvs import render
from healthd.ipvs.driver import apply_all
from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.format import c_qsort, to_data, to_ipvsadm
from healthd.ipvs.types import (
    AddDest,
    AddService,
    Counters,
    Dest,
    DestKey,
    Method,
    Protocol,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)


def _key(proto: Protocol, addr: str, port: int) -> ServiceKey:
    return ServiceKey(proto, ip_address(addr), port)


def _dest(addr: str, port: int, method: Method = Method.ROUTE, weight: int = 1) -> Dest:
    return Dest(DestKey(ip_address(addr), port), weight=weight, method=method)


async def _table(*ops) -> Table:
    fake = FakeDriver()
    await apply_all(fake, ops)
    return await fake.dump()


async def test_every_kind_of_line():
    tcp = _key(Protocol.TCP, "192.0.2.10", 80)
    udp6 = _key(Protocol.UDP, "2001:db8::10", 53)
    sctp = _key(Protocol.SCTP, "192.0.2.10", 3868)
    fwm = ServiceKey(Protocol.FWM, fwmark=5)
    fwm6 = ServiceKey(Protocol.FWM, fwmark=5, family=6)
    table = await _table(
        AddService(Service(udp6, "rr", persistent=60, netmask=64, one_packet=True)),
        AddService(Service(fwm6, "mh", persistent=30, sched_flags=frozenset({"mh-port"}))),
        AddService(Service(sctp, "sh", sched_flags=frozenset({"sh-fallback", "sh-port"}))),
        AddService(Service(fwm, "wlc", persistent=300, netmask="255.255.255.0")),
        AddService(Service(tcp, "wrr", sched_flags=frozenset({"flag-3"}))),
        AddDest(tcp, _dest("198.51.100.2", 80, Method.MASQ, 0)),
        AddDest(tcp, _dest("198.51.100.1", 8080, Method.TUNNEL, 65535)),
        AddDest(tcp, _dest("2001:db8::1", 80, Method.TUNNEL)),
        AddDest(udp6, _dest("2001:db8::2", 53, Method.MASQ, 3)),
        AddDest(fwm, _dest("198.51.100.3", 0)),
        AddDest(fwm6, _dest("2001:db8::3", 0)),
    )
    assert to_ipvsadm(table) == (
        "-A -t 192.0.2.10:80 -s wrr -b flag-3\n"
        "-a -t 192.0.2.10:80 -r 198.51.100.1:8080 -i -w 65535 --tun-type ipip\n"
        "-a -t 192.0.2.10:80 -r 198.51.100.2:80 -m -w 0\n"
        "-a -t 192.0.2.10:80 -r [2001:db8::1]:80 -i -w 1 --tun-type ipip\n"
        "-A --sctp-service 192.0.2.10:3868 -s sh -b sh-fallback,sh-port\n"
        "-A -u [2001:db8::10]:53 -s rr -p 60 -M 64 -o\n"
        "-a -u [2001:db8::10]:53 -r [2001:db8::2]:53 -m -w 3\n"
        "-A -f 5 -s wlc -p 300 -M 255.255.255.0\n"
        "-a -f 5 -r 198.51.100.3:0 -g -w 1\n"
        "-A -f 5 -6 -s mh -p 30 -b mh-port\n"
        "-a -f 5 -6 -r [2001:db8::3]:0 -g -w 1\n"
    )


async def test_full_persistence_mask_is_not_printed():
    v4 = _key(Protocol.TCP, "192.0.2.1", 443)
    v6 = _key(Protocol.TCP, "2001:db8::1", 443)
    table = await _table(
        AddService(Service(v4, persistent=300, netmask="255.255.255.255")),
        AddService(Service(v6, persistent=300, netmask=128)),
    )
    assert to_ipvsadm(table) == (
        "-A -t 192.0.2.1:443 -s wrr -p 300\n-A -t [2001:db8::1]:443 -s wrr -p 300\n"
    )


def test_empty_table_prints_nothing():
    assert to_ipvsadm(Table()) == ""


async def test_wrapped_address_difference_sorts_as_ipvsadm_does():
    # ipvsadm compares ntohl(a) - ntohl(b) in an int: 10.0.0.1 - 192.0.2.1 wraps positive,
    # so ipvsadm lists the 192.0.2.1 service before the 10.0.0.1 one.
    low = _key(Protocol.TCP, "10.0.0.1", 80)
    high = _key(Protocol.TCP, "192.0.2.1", 80)
    text = to_ipvsadm(await _table(AddService(Service(low)), AddService(Service(high))))
    assert text.splitlines() == ["-A -t 192.0.2.1:80 -s wrr", "-A -t 10.0.0.1:80 -s wrr"]


def _glibc_qsort(values: list[int]) -> list[int]:
    """Sort u32 values with the C library's qsort and ipvsadm's wrapping comparator."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    cmp_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32)
    )

    def cmp(a, b) -> int:
        return ctypes.c_int32((a[0] - b[0]) & 0xFFFFFFFF).value

    array = (ctypes.c_uint32 * len(values))(*values)
    libc.qsort(array, len(values), ctypes.sizeof(ctypes.c_uint32), cmp_type(cmp))
    return list(array)


def _wrapped(a: int, b: int) -> int:
    return ctypes.c_int32((a - b) & 0xFFFFFFFF).value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=40))
def test_c_qsort_matches_the_c_library_with_a_non_transitive_comparator(values):
    assert c_qsort(values, _wrapped) == _glibc_qsort(values)


def test_c_qsort_is_stable():
    items = [(3, "a"), (1, "b"), (3, "c"), (2, "d"), (1, "e")]
    out = c_qsort(items, lambda x, y: x[0] - y[0])
    assert out == [(1, "b"), (1, "e"), (2, "d"), (3, "a"), (3, "c")]


async def test_data_carries_every_field():
    key = _key(Protocol.UDP, "2001:db8::10", 53)
    dest = Dest(DestKey(ip_address("2001:db8::2"), 53), 7, Method.MASQ, upper=9, lower=4)
    counters = Counters(1, 2, 3, 4, 5, 6, 7, 8)
    service = Service(key, "sh", 60, 64, True, frozenset({"sh-port"}))
    entry = ServiceEntry(service, {dest.key: dest}, counters, {dest.key: counters})
    data = to_data(Table({key: entry}))
    assert data == {
        "services": [
            {
                "name": "udp/[2001:db8::10]:53",
                "proto": "udp",
                "address": "2001:db8::10",
                "port": 53,
                "fwmark": 0,
                "family": 6,
                "scheduler": "sh",
                "persistent": 60,
                "netmask": 64,
                "one_packet": True,
                "sched_flags": ["sh-port"],
                "counters": {
                    "active_conns": 1,
                    "inactive_conns": 2,
                    "persist_conns": 3,
                    "conns": 4,
                    "inpkts": 5,
                    "outpkts": 6,
                    "inbytes": 7,
                    "outbytes": 8,
                },
                "dests": [
                    {
                        "address": "2001:db8::2",
                        "port": 53,
                        "weight": 7,
                        "method": "masq",
                        "upper": 9,
                        "lower": 4,
                        "counters": data["services"][0]["counters"],
                    }
                ],
            }
        ]
    }
    table = Table({key: entry})
    assert json.loads(render(table, "json")) == data
    assert yaml.safe_load(render(table, "yaml")) == data


@pytest.mark.skipif(os.path.exists("/proc/net/ip_vs"), reason="IPVS is available here")
@pytest.mark.parametrize("fmt", ["ipvsadm", "json", "yaml"])
def test_cli_error_is_one_line_and_exit_1(fmt, capsys):
    assert main(["ipvs", "dump", "--format", fmt]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("healthd: ")
    assert "Traceback" not in err
