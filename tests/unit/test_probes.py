"""From CheckSpec + Real + Virtual to probes: kinds, ports, options, combined, unusable checks."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address

import pytest

import checks
from checks.base import CheckOptionError, Result, UnknownCheckError
from healthd import logs, probes
from healthd.model import CheckSpec, CheckType, Proto, Real, ServiceName, Virtual
from healthd.scheduler import run_once


def make_virtual(spec: CheckSpec, proto: Proto = Proto.TCP, port: int = 80, **kw) -> Virtual:
    real = kw.pop("real", Real(ip_address("198.51.100.5"), 8080))
    if proto is Proto.FWM:
        return Virtual(proto, None, 0, fwmark=7, reals=(real,), check=spec, **kw)
    return Virtual(proto, ip_address("192.0.2.10"), port, reals=(real,), check=spec, **kw)


class Recorder:
    """A check factory that records kinds and options, and answers from a script per kind."""

    def __init__(self, answers: dict[str, list[bool]] | None = None) -> None:
        self.built: list[tuple[str, dict[str, str], float]] = []
        self.ran: list[str] = []
        self.answers = answers or {}

    def __call__(self, kind: str):
        recorder = self

        class Stub:
            @classmethod
            def from_options(cls, options, ctx):
                recorder.built.append((kind, dict(options), ctx.timeout))
                return cls()

            async def check(self, target):
                recorder.ran.append(kind)
                script = recorder.answers.get(kind, [True])
                ok = script.pop(0) if len(script) > 1 else script[0]
                return Result.ok() if ok else Result.down("refused")

        return Stub


@pytest.mark.parametrize(
    ("spec", "proto", "expected"),
    [
        (CheckSpec(checktype=CheckType.CONNECT), Proto.TCP, ("connect",)),
        (CheckSpec(checktype=CheckType.CONNECT), Proto.UDP, ("ping",)),
        (CheckSpec(checktype=CheckType.CONNECT), Proto.FWM, ("connect",)),
        (CheckSpec(checktype=CheckType.PING), Proto.TCP, ("ping",)),
        (CheckSpec(checktype=CheckType.EXTERNAL), Proto.TCP, ("external",)),
        (CheckSpec(checktype=CheckType.EXTERNAL_PERL), Proto.TCP, ("external-perl",)),
        (CheckSpec(service=ServiceName("http")), Proto.TCP, ("http",)),
        (CheckSpec(service=ServiceName("none")), Proto.TCP, ()),
        (CheckSpec(checktype=CheckType.ON), Proto.TCP, ()),
        (CheckSpec(checktype=CheckType.OFF), Proto.TCP, ()),
        (
            CheckSpec(checktype=CheckType.COMBINED, combined_every=3, service=ServiceName("dns")),
            Proto.UDP,
            ("dns", "ping"),
        ),
    ],
)
def test_kinds(spec, proto, expected):
    assert probes.kinds(make_virtual(spec, proto)) == expected


def test_describe_names_the_check_for_logs():
    assert probes.describe(make_virtual(CheckSpec(service=ServiceName("https")))) == "https"
    assert probes.describe(make_virtual(CheckSpec(checktype=CheckType.ON))) == "on"
    assert probes.describe(make_virtual(CheckSpec())) == "none"
    combined = CheckSpec(
        checktype=CheckType.COMBINED, combined_every=4, service=ServiceName("smtp")
    )
    assert probes.describe(make_virtual(combined)) == "combined/4:smtp"


def test_check_port_order_checkport_then_real_then_service_default():
    http = CheckSpec(service=ServiceName("http"))
    v = make_virtual(http)
    assert probes.check_port(v, Real(ip_address("198.51.100.5"), 8080)) == 8080
    assert probes.check_port(v, Real(ip_address("198.51.100.5"), 0)) == 80
    with_port = make_virtual(CheckSpec(service=ServiceName("http"), checkport=8443))
    assert probes.check_port(with_port, Real(ip_address("198.51.100.5"), 8080)) == 8443
    none = make_virtual(CheckSpec(service=ServiceName("simpletcp")))
    assert probes.check_port(none, Real(ip_address("198.51.100.5"), 0)) == 0


def test_target_carries_the_virtual_and_the_real():
    v = make_virtual(CheckSpec(checktype=CheckType.CONNECT), Proto.FWM)
    t = probes.target(v, v.reals[0])
    assert (t.address, t.port, t.real_port) == (ip_address("198.51.100.5"), 8080, 8080)
    assert (t.virtual_address, t.virtual_port, t.fwmark, t.protocol) == (None, 0, 7, "fwm")


def test_options_merge_the_real_overrides_and_skip_unset_values():
    spec = CheckSpec(service=ServiceName("http"), request="/a", receive="x", virtualhost="www")
    plain = Real(ip_address("198.51.100.5"), 80)
    override = Real(ip_address("198.51.100.6"), 80, request="/b", receive="y")
    opts = probes.options(spec, plain)
    assert (opts["request"], opts["receive"], opts["virtualhost"]) == ("/a", "x", "www")
    assert opts["service"] == "http"
    assert opts["tls_verify"] == "no"
    assert "tls_cafile" not in opts
    assert all(isinstance(v, str) for v in opts.values())
    opts = probes.options(spec, override)
    assert (opts["request"], opts["receive"]) == ("/b", "y")


def test_build_passes_the_right_timeout():
    rec = Recorder()
    spec = CheckSpec(service=ServiceName("http"), checktimeout=3, negotiatetimeout=17)
    probe = probes.build(make_virtual(spec), make_virtual(spec).reals[0], rec)
    assert probe is not None
    assert probe.timeout == 17
    assert rec.built[0][2] == 17
    connect = CheckSpec(checktype=CheckType.CONNECT, checktimeout=3, negotiatetimeout=17)
    probe = probes.build(make_virtual(connect), make_virtual(connect).reals[0], rec)
    assert probe is not None
    assert probe.timeout == 3


@pytest.mark.parametrize(
    ("checktype", "proto"), [(CheckType.PING, Proto.TCP), (CheckType.CONNECT, Proto.UDP)]
)
def test_a_ping_probe_may_take_every_attempt(checktype, proto):
    # ldirectord: checkcount pings of checktimeout each, so the run may take their sum
    rec = Recorder()
    spec = CheckSpec(checktype=checktype, checktimeout=2, checkcount=3, negotiatetimeout=17)
    v = make_virtual(spec, proto=proto)
    probe = probes.build(v, v.reals[0], rec)
    assert probe is not None
    assert probe.timeout == 6
    assert rec.built == [("ping", rec.built[0][1], 2)]  # each attempt still waits checktimeout
    assert rec.built[0][1]["checkcount"] == "3"


def test_combined_udp_ping_attempts_bound_the_run():
    spec = CheckSpec(
        checktype=CheckType.COMBINED,
        combined_every=2,
        service=ServiceName("dns"),
        checkcount=4,
        checktimeout=1.5,
        negotiatetimeout=3,
    )
    v = make_virtual(spec, proto=Proto.UDP)
    probe = probes.build(v, v.reals[0], Recorder())
    assert probe is not None
    assert probe.timeout == 6  # four pings of 1.5 s outlast the 3 s dns negotiation


async def test_ping_attempts_are_not_cut_at_one_checktimeout():
    class SlowPing:
        @classmethod
        def from_options(cls, options, ctx):
            return cls()

        async def check(self, target):
            await asyncio.sleep(0.3)  # a reply at the third of five attempts of 0.1 s
            return Result.ok("echo reply (attempt 3/5)")

    spec = CheckSpec(checktype=CheckType.PING, checktimeout=0.1, checkcount=5)
    v = make_virtual(spec)
    probe = probes.build(v, v.reals[0], lambda kind: SlowPing)  # type: ignore[arg-type,return-value]
    assert probe is not None
    result = await run_once(probe, logs.get_logger("test"), grace=0.05)
    assert (result.up, result.detail) == (True, "echo reply (attempt 3/5)")


def test_build_on_off_gives_no_probe_and_none_is_always_up():
    rec = Recorder()
    for checktype in (CheckType.ON, CheckType.OFF):
        v = make_virtual(CheckSpec(checktype=checktype))
        assert probes.build(v, v.reals[0], rec) is None
    v = make_virtual(CheckSpec(service=ServiceName("none")))
    probe = probes.build(v, v.reals[0], rec)
    assert probe is not None
    assert probe.kind == "none"
    assert rec.built == []


async def test_none_probe_reports_up():
    v = make_virtual(CheckSpec(service=ServiceName("none")))
    probe = probes.build(v, v.reals[0], Recorder())
    assert probe is not None
    assert (await probe.run()).up


async def test_combined_counter_follows_ldirectord():
    # N=2: negotiate, connect, connect, negotiate ...; a failed connect forces a negotiate;
    # a failed negotiate is retried the next round
    rec = Recorder({"http": [True, False, True], "connect": [True, True, False, True]})
    spec = CheckSpec(checktype=CheckType.COMBINED, combined_every=2, service=ServiceName("http"))
    v = make_virtual(spec)
    probe = probes.build(v, v.reals[0], rec)
    assert probe is not None
    results = [(await probe.run()).up for _ in range(8)]
    assert rec.ran == [
        "http",  # counter starts high: negotiate (ok, counter 0)
        "connect",  # ok, 1
        "connect",  # ok, 2
        "http",  # failed: counter unchanged, negotiate again
        "http",  # ok, 0
        "connect",  # failed: force negotiate
        "http",
        "connect",
    ]
    assert results[3] is False
    assert results[5] is False


async def test_combined_zero_always_negotiates():
    rec = Recorder()
    spec = CheckSpec(checktype=CheckType.COMBINED, combined_every=0, service=ServiceName("http"))
    v = make_virtual(spec)
    probe = probes.build(v, v.reals[0], rec)
    assert probe is not None
    for _ in range(3):
        await probe.run()
    assert rec.ran == ["http"] * 3


async def test_an_unusable_check_reports_down_every_round():
    def unknown(kind: str):
        raise UnknownCheckError(kind, ["connect"])

    v = make_virtual(CheckSpec(service=ServiceName("oracle")))
    probe = probes.build(v, v.reals[0], unknown)
    assert probe is not None
    result = await probe.run()
    assert result.reason == "check_unavailable"
    assert "oracle" in result.detail

    class BadOptions:
        @classmethod
        def from_options(cls, options, ctx):
            raise CheckOptionError("receive: not a regular expression")

    probe = probes.build(v, v.reals[0], lambda kind: BadOptions)  # type: ignore[arg-type,return-value]
    assert probe is not None
    result = await probe.run()
    assert result.reason == "config_error"
    assert "receive" in result.detail


# ldirectord §8.1: each service's default check port
LDIRECTORD_PORTS = {
    "ftp": 21, "smtp": 25, "dns": 53, "http": 80, "pop": 110, "nntp": 119, "imap": 143,
    "ldap": 389, "https": 443, "submission": 587, "ldaps": 636, "imaps": 993, "pops": 995,
    "oracle": 1521, "radius": 1812, "http_proxy": 3128, "mysql": 3306, "sip": 5060,
    "pgsql": 5432,
}  # fmt: skip


def test_service_default_ports_are_ldirectords():
    assert {k.name: k.port for k in checks.services() if k.port} == LDIRECTORD_PORTS
    for service in [ServiceName(k.name) for k in checks.services()]:
        # simpletcp has no default port (0): checkport or the real's port
        v = make_virtual(CheckSpec(service=service), real=Real(ip_address("198.51.100.5"), 0))
        assert probes.check_port(v, v.reals[0]) == LDIRECTORD_PORTS.get(str(service), 0)
