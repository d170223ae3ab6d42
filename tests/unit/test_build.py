"""Effective values: defaults, inheritance, the timeout cross-fallback, guessed services."""

from __future__ import annotations

import pytest

from healthd.config import StaticResolver, parse_text
from healthd.model import AlertStatus, CheckType, Config, Forward, Proto, ServiceName

RESOLVER = StaticResolver(services={"domain": 53, "http": 80})


def config(text: str) -> Config:
    return parse_text(text, "t.cf", resolver=RESOLVER, hostname="lb1.example")


def test_defaults_follow_ldirectord_code():
    (v,) = config("virtual=192.0.2.10:8080\n    real=10.0.0.1:8080 gate\n").virtuals
    c = v.check
    assert (v.scheduler, v.quiescent, v.cleanstop, v.failurecount) == ("wrr", False, True, 1)
    assert (v.checkinterval, v.rise, v.fallback, v.persistent) == (10.0, 1, None, None)
    assert (c.checktype, c.service, c.request, c.receive) == (
        CheckType.NEGOTIATE,
        ServiceName("none"),
        "/",
        "",
    )
    assert (c.checktimeout, c.negotiatetimeout, c.checkcount) == (5.0, 30.0, 1)
    assert (c.httpmethod, c.checkcommand, c.login, c.passwd) == ("GET", "/bin/true", "", "")
    assert (c.tls_verify, c.tls_cafile, c.tls_hostname, c.checkport) == (False, None, None, None)
    assert v.alerts.emailalertstatus == frozenset(AlertStatus)


def test_global_config_defaults():
    cfg = config("")
    assert (cfg.checkinterval, cfg.autoreload, cfg.logfile, cfg.fork) == (
        10.0,
        False,
        "/var/log/ldirectord.log",
        False,
    )
    assert (cfg.supervised, cfg.readdquiescent, cfg.resync_interval, cfg.max_in_flight) == (
        False,
        False,
        30.0,
        256,
    )
    assert cfg.virtuals == ()


@pytest.mark.parametrize(
    ("glob", "body", "expected"),
    [
        ("", "", (5.0, 30.0)),
        ("checktimeout=3", "", (3.0, 3.0)),
        ("negotiatetimeout=12", "", (12.0, 12.0)),
        ("checktimeout=3\nnegotiatetimeout=12", "", (3.0, 12.0)),
        ("negotiatetimeout=30", "checktimeout=2", (2.0, 2.0)),  # ldirectord §4.4
        ("checktimeout=4", "negotiatetimeout=9", (9.0, 9.0)),
        ("checktimeout=4\nnegotiatetimeout=20", "negotiatetimeout=9", (9.0, 9.0)),
        ("", "checktimeout=1\nnegotiatetimeout=8", (1.0, 8.0)),
    ],
)
def test_timeout_cross_fallback(glob, body, expected):
    lines = "".join(f"    {b}\n" for b in body.splitlines())
    (v,) = config(f"{glob}\nvirtual=192.0.2.10:80\n{lines}").virtuals
    assert (v.check.checktimeout, v.check.negotiatetimeout) == expected


def test_virtual_overrides_global_and_inherits_the_rest():
    cfg = config(
        "quiescent=yes\nfailurecount=3\nemailalert=ops@example.com\ncleanstop=no\n"
        "virtual=192.0.2.10:80\n    quiescent=no\n"
        "virtual=192.0.2.11:80\n    failurecount=1\n"
    )
    a, b = cfg.virtuals
    assert (a.quiescent, a.failurecount, a.cleanstop) == (False, 3, False)
    assert (b.quiescent, b.failurecount) == (True, 1)
    assert a.alerts.emailalert == b.alerts.emailalert == ("ops@example.com",)


@pytest.mark.parametrize(
    ("port", "service"),
    [(21, "ftp"), (25, "smtp"), (53, "dns"), (80, "http"), (110, "pop"), (119, "nntp"),
     (143, "imap"), (389, "ldap"), (443, "https"), (587, "submission"), (636, "ldaps"),
     (993, "imaps"), (995, "pops"), (1521, "oracle"), (1812, "radius"), (3128, "http_proxy"),
     (3306, "mysql"), (5060, "sip"), (5432, "pgsql"), (8080, "none")],
)  # fmt: skip
def test_service_guessed_from_the_virtual_port(port, service):
    (v,) = config(f"virtual=192.0.2.10:{port}\n").virtuals
    assert v.check.service == ServiceName(service)


def test_fwmark_virtual_is_protocol_fwm_and_service_none():
    (v,) = config("virtual=5\n    real=10.0.0.1 gate\n").virtuals
    assert (v.proto, v.fwmark, v.port, v.address, v.check.service) == (
        Proto.FWM,
        5,
        0,
        None,
        ServiceName("none"),
    )


def test_protocol_udp_for_port_53_and_domain_only():
    cfg = config("virtual=192.0.2.1:53\nvirtual=192.0.2.2:domain\nvirtual=192.0.2.3:80\n")
    assert [v.proto for v in cfg.virtuals] == [Proto.UDP, Proto.UDP, Proto.TCP]


def test_login_defaults_only_with_explicit_service():
    guessed, ftp, sip = config(
        "virtual=192.0.2.1:21\nvirtual=192.0.2.2:2121\n    service=ftp\n"
        "virtual=192.0.2.3:5060\n    service=sip\n"
    ).virtuals
    assert (guessed.check.login, guessed.check.passwd) == ("", "")
    assert (ftp.check.login, ftp.check.passwd) == ("anonymous", "ldirectord@lb1.example")
    assert (sip.check.login, sip.check.passwd) == ("ldirectord@lb1.example", "")


def test_explicit_login_wins_over_service_default():
    (v,) = config('virtual=192.0.2.2:21\n    service=ftp\n    login="bob"\n').virtuals
    assert v.check.login == "bob"


def test_global_fallback_applies_by_family_and_takes_the_virtual_port():
    cfg = config(
        "fallback=127.0.0.1 masq\nfallback6=[::1]:8080\n"
        "virtual=192.0.2.1:80\nvirtual=192.0.2.2:443\nvirtual=7\n"
        "virtual6=[2001:db8::1]:80\nvirtual6=9\n"
    )
    found = [
        (str(v.fallback.address), v.fallback.port, v.fallback.forward)
        for v in cfg.virtuals
        if v.fallback
    ]
    assert found == [
        ("127.0.0.1", 80, Forward.MASQ),
        ("127.0.0.1", 443, Forward.MASQ),
        ("127.0.0.1", 0, Forward.MASQ),  # ldirectord: broken for fwmark; healthd applies it
        ("::1", 8080, Forward.GATE),
        ("::1", 8080, Forward.GATE),
    ]


def test_virtual_fallback_overrides_global():
    (v,) = config(
        "fallback=127.0.0.1:80\nvirtual=192.0.2.1:80\n    fallback=127.0.0.2:81 ipip\n"
    ).virtuals
    assert v.fallback is not None
    assert (str(v.fallback.address), v.fallback.port, v.fallback.forward) == (
        "127.0.0.2",
        81,
        Forward.IPIP,
    )


def test_ops_only_for_udp_and_warns_otherwise():
    from healthd.config import parse_text_with_warnings

    cfg, warnings = parse_text_with_warnings(
        "virtual=192.0.2.1:80\n    ops=yes\n", "t.cf", resolver=RESOLVER
    )
    assert cfg.virtuals[0].ops is False
    assert [str(w) for w in warnings] == [
        "t.cf:2:5: warning: ops has no effect unless protocol is udp"
    ]


def test_real_port_differs_with_gate_warns():
    from healthd.config import parse_text_with_warnings

    _, warnings = parse_text_with_warnings(
        "virtual=192.0.2.1:80\n    real=10.0.0.1:8080 gate\n    real=10.0.0.2:8080 masq\n", "t.cf"
    )
    assert [str(w) for w in warnings] == [
        "t.cf:2:5: warning: real server port 8080 differs from the virtual port 80; "
        "with gate the packets keep port 80"
    ]


def test_virtual_checkinterval_is_honoured():
    (v,) = config("checkinterval=20\nvirtual=192.0.2.1:80\n    checkinterval=4\n").virtuals
    assert v.checkinterval == 4.0


def test_model_locations_point_at_the_lines():
    (v,) = config("\nvirtual=192.0.2.1:80\n    real=10.0.0.1:80 gate\n").virtuals
    assert v.loc is not None
    assert v.reals[0].loc is not None
    assert (v.loc.line, v.reals[0].loc.line) == (2, 3)


def test_hostname_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("HOSTNAME", "director.example")
    (v,) = parse_text("virtual=192.0.2.2:21\n    service=ftp\n", "t.cf").virtuals
    assert v.check.passwd == "ldirectord@director.example"
