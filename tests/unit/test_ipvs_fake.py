"""FakeDriver: kernel invariants, errno policy, journal, failure injection, canonical values."""

from __future__ import annotations

import errno
from ipaddress import ip_address

import pytest

from healthd.errors import DriverError
from healthd.ipvs.driver import IPVSDriver, apply_all
from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    Method,
    Protocol,
    Service,
    ServiceKey,
    Table,
)

_: IPVSDriver = FakeDriver()  # mypy: FakeDriver satisfies the protocol

TCP = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
UDP = ServiceKey(Protocol.UDP, ip_address("192.0.2.10"), 53)
FWM6 = ServiceKey(Protocol.FWM, fwmark=7, family=6)
D1 = Dest(DestKey(ip_address("198.51.100.1"), 80), weight=1, method=Method.MASQ)
D6 = Dest(DestKey(ip_address("2001:db8::1"), 80), weight=1, method=Method.TUNNEL)


async def _errno(driver: FakeDriver, op, raw: bool = False) -> int:
    with pytest.raises(DriverError) as info:
        await (driver.apply_raw(op) if raw else driver.apply(op))
    assert "Traceback" not in str(info.value)
    assert "\n" not in str(info.value)
    return info.value.errno


async def test_add_and_dump_keeps_insertion_order():
    fake = FakeDriver()
    await apply_all(fake, [AddService(Service(UDP)), AddService(Service(TCP)), AddDest(TCP, D1)])
    table = await fake.dump()
    assert list(table.services) == [UDP, TCP]
    assert table.services[TCP].dests == {D1.key: D1}
    assert fake.journal == [AddService(Service(UDP)), AddService(Service(TCP)), AddDest(TCP, D1)]


async def test_dest_without_service_is_enoent():
    fake = FakeDriver()
    assert await _errno(fake, AddDest(TCP, D1)) == errno.ENOENT
    assert await _errno(fake, EditDest(TCP, D1)) == errno.ENOENT
    assert await _errno(fake, AddDest(TCP, D1), raw=True) == errno.ESRCH
    assert fake.journal == []


async def test_raw_level_is_strict():
    fake = FakeDriver()
    await fake.apply_raw(AddService(Service(TCP)))
    assert await _errno(fake, AddService(Service(TCP)), raw=True) == errno.EEXIST
    await fake.apply_raw(AddDest(TCP, D1))
    assert await _errno(fake, AddDest(TCP, D1), raw=True) == errno.EEXIST
    other = DestKey(ip_address("198.51.100.9"), 80)
    assert await _errno(fake, DelDest(TCP, other), raw=True) == errno.ENOENT
    assert await _errno(fake, EditDest(TCP, Dest(other)), raw=True) == errno.ENOENT
    assert await _errno(fake, DelService(UDP), raw=True) == errno.ESRCH
    assert await _errno(fake, EditService(Service(UDP)), raw=True) == errno.ESRCH


async def test_idempotent_policy():
    fake = FakeDriver()
    await fake.apply(AddService(Service(TCP, "rr")))
    await fake.apply(AddService(Service(TCP, "wlc")))  # EEXIST -> edit to match
    heavy = Dest(D1.key, weight=9, method=Method.ROUTE)
    await fake.apply(AddDest(TCP, D1))
    await fake.apply(AddDest(TCP, heavy))  # EEXIST -> edit to match
    await fake.apply(DelDest(TCP, DestKey(ip_address("198.51.100.7"), 80)))  # nothing: ok
    await fake.apply(DelService(UDP))  # nothing: ok
    await fake.apply(DelDest(UDP, D1.key))  # no service: ok
    table = await fake.dump()
    assert table.services[TCP].service.scheduler == "wlc"
    assert table.services[TCP].dests == {D1.key: heavy}
    await fake.apply(DelDest(TCP, D1.key))
    await fake.apply(EditDest(TCP, D1))  # vanished -> added
    await fake.apply(EditService(Service(UDP, "rr")))  # vanished -> added
    table = await fake.dump()
    assert table.services[TCP].dests == {D1.key: D1}
    assert UDP in table.services
    assert len(fake.journal) == 10


async def test_unknown_scheduler_is_a_clear_error():
    fake = FakeDriver(schedulers={"rr"})
    with pytest.raises(DriverError) as info:
        await fake.apply(AddService(Service(TCP, "xyz")))
    assert info.value.errno == errno.ENOENT
    assert "scheduler 'xyz' is not available: kernel module ip_vs_xyz not loaded" in str(info.value)
    await fake.apply(AddService(Service(TCP, "rr")))
    assert await _errno(fake, EditService(Service(TCP, "xyz"))) == errno.ENOENT
    assert (await fake.dump()).services[TCP].service.scheduler == "rr"


@pytest.mark.parametrize(
    ("dest", "err"),
    [
        (Dest(D1.key, weight=-1), errno.ERANGE),
        (Dest(D1.key, weight=65536), errno.ERANGE),
        (Dest(D1.key, upper=5, lower=6), errno.ERANGE),
        (Dest(D1.key, upper=2**31), errno.ERANGE),
        (Dest(DestKey(ip_address("2001:db8::5"), 80), method=Method.MASQ), errno.EINVAL),
        (Dest(DestKey(ip_address("2001:db8::5"), 80), method=Method.ROUTE), errno.EINVAL),
        (Dest(DestKey(ip_address("224.0.0.1"), 80)), errno.EINVAL),
        (Dest(DestKey(ip_address("0.0.0.0"), 80)), errno.EINVAL),
        (Dest(DestKey(ip_address("198.51.100.1"), 65536)), errno.EINVAL),
    ],
)
async def test_dest_values_the_kernel_refuses(dest, err):
    fake = FakeDriver()
    await fake.apply(AddService(Service(TCP)))
    assert await _errno(fake, AddDest(TCP, dest)) == err
    assert (await fake.dump()).services[TCP].dests == {}


async def test_weight_bounds_and_mixed_family_tunnel_are_accepted():
    fake = FakeDriver()
    await fake.apply(AddService(Service(TCP)))
    await fake.apply(AddDest(TCP, Dest(D1.key, weight=0)))
    await fake.apply(EditDest(TCP, Dest(D1.key, weight=65535, upper=10, lower=10)))
    await fake.apply(AddDest(TCP, D6))  # v6 dest in a v4 service: only by tunnel
    await fake.apply(AddService(Service(FWM6)))
    await fake.apply(AddDest(FWM6, Dest(DestKey(ip_address("2001:db8::2"), 0), method=Method.MASQ)))
    dests = (await fake.dump()).services[TCP].dests
    assert dests[D1.key].weight == 65535
    assert D6.key in dests


@pytest.mark.parametrize(
    ("service", "err"),
    [
        (Service(TCP, persistent=300, netmask="255.255.0.300"), errno.EINVAL),
        (Service(FWM6, persistent=300, netmask="255.255.255.0"), errno.EINVAL),
        (Service(FWM6, persistent=300, netmask=129), errno.EINVAL),
        (Service(FWM6, persistent=300, netmask=0), errno.EINVAL),
        (Service(TCP, persistent=0), errno.EINVAL),
        (Service(TCP, one_packet=True), errno.EINVAL),
        (Service(TCP, sched_flags=frozenset({"bogus"})), errno.EINVAL),
        (Service(TCP, scheduler="a-very-long-scheduler"), errno.EINVAL),
        (Service(ServiceKey(Protocol.FWM, fwmark=0)), errno.EINVAL),
    ],
)
async def test_service_values_the_kernel_refuses(service, err):
    fake = FakeDriver()
    assert await _errno(fake, AddService(service)) == err
    assert (await fake.dump()).services == {}


def test_service_values_are_canonical():
    assert Service(TCP).netmask is None
    assert Service(TCP, netmask="255.0.0.0").netmask is None  # not persistent
    assert Service(TCP, persistent=60).netmask == "255.255.255.255"
    assert Service(TCP, persistent=60, netmask=24).netmask == "255.255.255.0"
    assert Service(TCP, persistent=60, netmask="16").netmask == "255.255.0.0"
    assert Service(FWM6, persistent=60).netmask == 128
    assert Service(FWM6, persistent=60, netmask="64").netmask == 64
    sh = Service(TCP, "sh", sched_flags=frozenset({"flag-1", "flag-2"}))
    assert sh.sched_flags == {"sh-fallback", "sh-port"}
    assert sh.flag_bits == 0x18
    assert Service(TCP, "rr", sched_flags=frozenset({"mh-port"})).sched_flags == {"flag-2"}


async def test_edit_in_place_keeps_destinations():
    fake = FakeDriver()
    await apply_all(fake, [AddService(Service(TCP, "rr")), AddDest(TCP, D1)])
    edited = Service(TCP, "sh", persistent=30, sched_flags=frozenset({"sh-port"}))
    await fake.apply(EditService(edited))
    entry = (await fake.dump()).services[TCP]
    assert entry.service == edited
    assert entry.dests == {D1.key: D1}


async def test_initial_table_failure_injection_and_close():
    start = FakeDriver()
    await apply_all(start, [AddService(Service(TCP)), AddDest(TCP, D1)])
    fake = FakeDriver(await start.dump())
    assert (await fake.dump()).services[TCP].dests == {D1.key: D1}
    fake.fail_next(errno.EPERM)
    with pytest.raises(DriverError, match="permission denied: healthd needs CAP_NET_ADMIN"):
        await fake.apply(DelService(TCP))
    await fake.apply(DelService(TCP))
    assert (await fake.dump()).services == {}
    assert fake.journal == [DelService(TCP)]
    await fake.aclose()
    with pytest.raises(DriverError):
        await fake.dump()


async def test_dump_is_a_snapshot():
    fake = FakeDriver()
    await fake.apply(AddService(Service(TCP)))
    before = await fake.dump()
    await fake.apply(AddDest(TCP, D1))
    assert before.services[TCP].dests == {}
    assert before == Table({TCP: before.services[TCP]})


async def test_counters_set_for_a_dest_are_dumped_and_summed_per_service():
    from healthd.ipvs.types import Counters

    d = FakeDriver()
    await apply_all(d, [AddService(Service(TCP)), AddDest(TCP, D1)])
    d.set_counters(TCP, D1.key, Counters(active_conns=3, conns=10, inbytes=500, outbytes=900))
    entry = (await d.dump()).services[TCP]
    assert entry.dest_counters[D1.key].active_conns == 3
    assert (entry.counters.conns, entry.counters.inbytes, entry.counters.outbytes) == (10, 500, 900)


async def test_counters_go_with_their_dest_as_in_the_kernel():
    from healthd.ipvs.types import Counters

    d = FakeDriver()
    await apply_all(d, [AddService(Service(TCP)), AddDest(TCP, D1)])
    d.set_counters(TCP, D1.key, Counters(active_conns=3))
    await apply_all(d, [DelDest(TCP, D1.key), AddDest(TCP, D1)])
    assert (await d.dump()).services[TCP].dest_counters[D1.key] == Counters()
