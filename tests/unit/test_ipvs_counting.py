"""CountingDriver: counts ops and errors by kind and keeps the last dump, changing nothing."""

from __future__ import annotations

import errno
from ipaddress import ip_address

import pytest

from healthd.errors import DriverError
from healthd.ipvs.counting import CountingDriver
from healthd.ipvs.driver import IPVSDriver
from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.types import AddDest, AddService, Dest, DestKey, Protocol, Service, ServiceKey

TCP = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
D1 = Dest(DestKey(ip_address("198.51.100.1"), 80))


def _typed(driver: CountingDriver) -> IPVSDriver:
    return driver  # mypy: a CountingDriver is an IPVSDriver


async def test_ops_and_errors_are_counted_by_kind_and_errors_pass_through():
    fake = FakeDriver()
    d = CountingDriver(fake, now=lambda: 1234.0)
    await _typed(d).apply(AddService(Service(TCP)))
    fake.fail_next(errno.EPERM)
    with pytest.raises(DriverError):
        await d.apply(AddDest(TCP, D1))
    await d.apply(AddDest(TCP, D1))
    assert dict(d.ops) == {"add_service": 1, "add_dest": 1}
    assert dict(d.op_errors) == {"add_dest": 1}


async def test_the_last_dump_and_its_time_are_kept():
    fake = FakeDriver()
    d = CountingDriver(fake, now=lambda: 1234.0)
    await d.apply(AddService(Service(TCP)))
    table = await d.dump()
    assert (d.dumps, d.dump_errors, d.last_dump, d.last_dump_at) == (1, 0, table, 1234.0)
    await d.aclose()
    with pytest.raises(DriverError):
        await d.dump()
    assert (d.dumps, d.dump_errors, d.last_dump) == (1, 1, table)
