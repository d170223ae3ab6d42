"""Accepted forms of every ldirectord directive, global and per virtual, and their values.

Rejected forms, with their exact messages, are in test_config_errors.py.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from operator import attrgetter

import pytest

from healthd.config import StaticResolver, parse_text
from healthd.config.parser import SPECS
from healthd.model import (
    AlertStatus,
    Announce,
    CheckType,
    Config,
    Forward,
    Proto,
    ServiceName,
    Syncd,
    SyncRole,
    Virtual,
)

RESOLVER = StaticResolver(
    hosts={
        "www.example": ["192.0.2.80"],
        "v6.example": ["2001:db8::80"],
        "sql01": ["198.51.100.1"],
        "sql03": ["198.51.100.3"],
    },
    services={"http": 80, "https": 443, "domain": 53, "ftp": 21, "smtp": 25},
)


def config(text: str) -> Config:
    return parse_text(text, "t.cf", resolver=RESOLVER, hostname="lb1")


def virtual(body: str, head: str = "virtual=192.0.2.10:80", glob: str = "") -> Virtual:
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    return config(f"{glob}\n{head}\n{lines}").virtuals[0]


# (virtual block body, attribute of the Virtual, expected value)
VIRTUAL_CASES = [
    ("real=10.0.0.1:80 gate", "reals", None),  # checked in detail below
    ("checktype=connect", "check.checktype", CheckType.CONNECT),
    ("checktype=negotiate", "check.checktype", CheckType.NEGOTIATE),
    ("checktype=ping", "check.checktype", CheckType.PING),
    ("checktype=external", "check.checktype", CheckType.EXTERNAL),
    ("checktype=external-perl", "check.checktype", CheckType.EXTERNAL_PERL),
    ("checktype=on", "check.checktype", CheckType.ON),
    ("checktype=off", "check.checktype", CheckType.OFF),
    ("checktype=3", "check.combined_every", 3),
    ("checktype=3", "check.checktype", CheckType.COMBINED),
    ("checktype=0", "check.checktype", CheckType.NEGOTIATE),
    ("service=ldaps", "check.service", ServiceName("ldaps")),
    ("service=simpletcp", "check.service", ServiceName("simpletcp")),
    ("checkport=8080", "check.checkport", 8080),
    ('request="index.html"', "check.request", "/index.html"),
    ('request="/health#frag"', "check.request", "/health#frag"),
    ("request=/unquoted", "check.request", "/unquoted"),
    ('receive="Test Page"', "check.receive", "Test Page"),
    ("httpmethod=head", "check.httpmethod", "HEAD"),
    ("httpmethod=GET", "check.httpmethod", "GET"),
    ('virtualhost="www.example.com"', "check.virtualhost", "www.example.com"),
    ("virtualhost=www.example.com", "check.virtualhost", "www.example.com"),
    ('login="monitor"', "check.login", "monitor"),
    ('passwd="p#ss word"', "check.passwd", "p#ss word"),
    ('database="shop"', "check.database", "shop"),
    ('secret="s3cret"', "check.secret", "s3cret"),
    ('checkcommand="/usr/local/bin/check"', "check.checkcommand", "/usr/local/bin/check"),
    ("checkcommand=/bin/false", "check.checkcommand", "/bin/false"),
    ("scheduler=wlc", "scheduler", "wlc"),
    ("scheduler=mh", "scheduler", "mh"),
    ("persistent=300", "persistent", 300),
    ("persistent=0", "persistent", 0),
    ("persistent=300\nnetmask=255.255.255.0", "netmask", "255.255.255.0"),
    ("protocol=udp", "proto", Proto.UDP),
    ("protocol=sctp", "proto", Proto.SCTP),
    ("protocol=udp\nops=yes", "ops", True),
    ("ops=no", "ops", False),
    ("scheduler=sh\nschedflags=sh-fallback,sh-port", "schedflags", ("sh-fallback", "sh-port")),
    ("fallback=127.0.0.1:8080 masq", "fallback.port", 8080),
    ("fallback=127.0.0.1 masq", "fallback.forward", Forward.MASQ),
    ("fallback=127.0.0.1", "fallback.port", 80),
    ('fallbackcommand="/usr/local/bin/fb"', "fallbackcommand", "/usr/local/bin/fb"),
    ("quiescent=yes", "quiescent", True),
    ("cleanstop=no", "cleanstop", False),
    ("checktimeout=2", "check.checktimeout", 2.0),
    ("checktimeout=2.5", "check.checktimeout", 2.5),
    ("negotiatetimeout=7", "check.negotiatetimeout", 7.0),
    ("checkcount=3", "check.checkcount", 3),
    ("failurecount=4", "failurecount", 4),
    ("checkinterval=3", "checkinterval", 3.0),
    (
        'emailalert="ops@example.com, noc@example.com"',
        "alerts.emailalert",
        ("ops@example.com", "noc@example.com"),
    ),
    ("emailalertfreq=600", "alerts.emailalertfreq", 600),
    (
        "emailalertstatus=starting, running",
        "alerts.emailalertstatus",
        frozenset({AlertStatus.STARTING, AlertStatus.RUNNING}),
    ),
    ("emailalertstatus=none", "alerts.emailalertstatus", frozenset()),
    ("emailalertstatus=all", "alerts.emailalertstatus", frozenset(AlertStatus)),
    ("smtp=mail.example.com", "alerts.smtp", "mail.example.com"),
    ('monitorfile="/var/log/web.monitor"', "monitorfile", "/var/log/web.monitor"),
    ("servicename=Web shop", "servicename", "Web shop"),
    ('comment="front end"', "comment", "front end"),
    ('load="cpu"', "scheduler", "wrr"),  # accepted, no effect (as in ldirectord)
    ("rise=3", "rise", 3),
    ("tls_verify=yes", "check.tls_verify", True),
    ('tls_cafile="/etc/ssl/ca.pem"', "check.tls_cafile", "/etc/ssl/ca.pem"),
    ("tls_hostname=www.example.com", "check.tls_hostname", "www.example.com"),
    ("announce_table=100", "announce", Announce(table=100)),
    ("announce_interface=lo", "announce", Announce(interface="lo")),
    ("announce_table=main\nannounce_fallback=yes", "announce", Announce(254, None, True)),
]


@pytest.mark.parametrize(("body", "attr", "expected"), VIRTUAL_CASES)
def test_virtual_directive_accepted(body, attr, expected):
    v = virtual(body)
    if expected is not None:
        assert attrgetter(attr)(v) == expected


def test_every_virtual_directive_has_an_accepted_case():
    covered = {body.splitlines()[-1].partition("=")[0] for body, _, _ in VIRTUAL_CASES}
    covered |= {body.partition("=")[0] for body, _, _ in VIRTUAL_CASES}
    expected = {k for k, s in SPECS.items() if s.scope != "global" and not k.endswith("6")}
    assert expected - covered == set()


# (global line, attribute of the Config or of its first Virtual, expected)
GLOBAL_CASES = [
    ("checkinterval=5", "checkinterval", 5.0),
    ("checkinterval=5", "virtuals[0].checkinterval", 5.0),
    ("autoreload=yes", "autoreload", True),
    ('callback="/usr/local/bin/cb"', "callback", "/usr/local/bin/cb"),
    ('logfile="local0"', "logfile", "local0"),
    ("logfile=/var/log/healthd.log", "logfile", "/var/log/healthd.log"),
    ('execute="other.cf"', "execute", ("other.cf",)),
    ("fork=yes", "fork", True),
    ("supervised=yes", "supervised", True),
    ("supervised", "supervised", True),
    ("readdquiescent=yes", "readdquiescent", True),
    ("emailalertfrom=lb@example.com", "emailalertfrom", "lb@example.com"),
    ('maintenancedir="/etc/ha.d/maint"', "maintenancedir", "/etc/ha.d/maint"),
    ("resync_interval=15", "resync_interval", 15.0),
    ("max_in_flight=32", "max_in_flight", 32),
    ("http_listen=127.0.0.1:9188", "http_listen", (IPv4Address("127.0.0.1"), 9188)),
    ("http_listen=[::1]:9188", "http_listen", (IPv6Address("::1"), 9188)),
    ("state_file=/var/lib/lb/state.json", "state_file", "/var/lib/lb/state.json"),
    ("syncd=no", "syncd", Syncd(frozenset(), "")),
    ("syncd_interface=lo\nsyncd=both", "syncd", Syncd(frozenset(SyncRole), "lo")),
    ("syncd_id=7\nsyncd=master\nsyncd_interface=lo", "syncd.syncid", 7),
    ("command_user=nobody", "command_user", "nobody"),
    ("checktimeout=2", "virtuals[0].check.checktimeout", 2.0),
    ("negotiatetimeout=9", "virtuals[0].check.negotiatetimeout", 9.0),
    ("checkcount=2", "virtuals[0].check.checkcount", 2),
    ("failurecount=3", "virtuals[0].failurecount", 3),
    ("fallback=127.0.0.1:81", "virtuals[0].fallback.port", 81),
    ("fallback6=[::1]:81", "virtuals[0].fallback", None),
    ("fallbackcommand=/usr/local/bin/fb", "virtuals[0].fallbackcommand", "/usr/local/bin/fb"),
    ("quiescent=yes", "virtuals[0].quiescent", True),
    ("cleanstop=no", "virtuals[0].cleanstop", False),
    ("emailalert=ops@example.com", "virtuals[0].alerts.emailalert", ("ops@example.com",)),
    ("emailalertfreq=60", "virtuals[0].alerts.emailalertfreq", 60),
    (
        "emailalertstatus=stopping",
        "virtuals[0].alerts.emailalertstatus",
        frozenset({AlertStatus.STOPPING}),
    ),
    ("smtp=192.0.2.25", "virtuals[0].alerts.smtp", "192.0.2.25"),
    ("rise=2", "virtuals[0].rise", 2),
    ("tls_verify=yes", "virtuals[0].check.tls_verify", True),
    ("tls_cafile=/ca.pem", "virtuals[0].check.tls_cafile", "/ca.pem"),
    ("tls_hostname=www.example.com", "virtuals[0].check.tls_hostname", "www.example.com"),
]


def _get(obj: object, path: str) -> object:
    for part in path.split("."):
        name, _, index = part.partition("[")
        obj = getattr(obj, name)
        if index:
            obj = obj[int(index.rstrip("]"))]  # type: ignore[index]
    return obj


@pytest.mark.parametrize(("line", "attr", "expected"), GLOBAL_CASES)
def test_global_directive_accepted(line, attr, expected):
    cfg = config(f"{line}\nvirtual=192.0.2.10:80\n    real=10.0.0.1:80 gate\n")
    assert _get(cfg, attr) == expected


def test_every_global_directive_has_an_accepted_case():
    covered = {line.partition("=")[0] for line, _, _ in GLOBAL_CASES}
    expected = {k for k, s in SPECS.items() if s.scope != "virtual"}
    assert expected - covered == set()


# --- virtual= heads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "name", "family"),
    [
        ("virtual=192.0.2.10:80", "tcp/192.0.2.10:80", 4),
        ("virtual = 192.0.2.10:http", "tcp/192.0.2.10:80", 4),
        ("virtual=www.example:https", "tcp/192.0.2.80:443", 4),
        ("virtual=192.0.2.53:53", "udp/192.0.2.53:53", 4),
        ("virtual=192.0.2.53:domain", "udp/192.0.2.53:53", 4),
        ("virtual=7", "fwm/7", 4),
        ("virtual6=7", "fwm6/7", 6),
        ("virtual6=[2001:db8::1]:80", "tcp/[2001:db8::1]:80", 6),
        ("virtual6=v6.example:80", "tcp/[2001:db8::80]:80", 6),
    ],
)
def test_virtual_heads(head, name, family):
    real = "real6=[2001:db8::5] gate" if head.startswith("virtual6") else "real=10.0.0.1 gate"
    v = virtual(real, head=head)
    assert (v.name, v.family) == (name, family)


# --- real= lines -------------------------------------------------------------------------


def test_real_line_full_form():
    (r,) = virtual('real=10.0.0.5:8080 masq 3 "health", "OK" l:10 u:100').reals
    assert (str(r.address), r.port, r.forward, r.weight) == ("10.0.0.5", 8080, Forward.MASQ, 3)
    assert (r.request, r.receive, r.lower, r.upper) == ("/health", "OK", 10, 100)


def test_real_request_with_leading_slash_keeps_its_receive():
    # ldirectord drops the receive string here (its bug); healthd keeps it
    (r,) = virtual('real=10.0.0.5:80 gate 1 "/health" "OK"').reals
    assert (r.request, r.receive) == ("/health", "OK")


def test_real_without_port_takes_the_virtual_port_and_weight_defaults_to_1():
    (r,) = virtual("real=10.0.0.5 ipip").reals
    assert (r.port, r.weight, r.forward) == (80, 1, Forward.IPIP)


def test_real_weight_zero_and_service_name_port():
    (r,) = virtual("real=10.0.0.5:http gate 0").reals
    assert (r.port, r.weight) == (80, 0)


def test_real_range_expands_to_one_real_each():
    reals = virtual("real=10.0.0.1->10.0.0.3:80 gate 2").reals
    assert [str(r.address) for r in reals] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert {r.weight for r in reals} == {2}


def test_real_range_of_host_names():
    reals = virtual("real=sql01->sql03:3306 masq", head="virtual=192.0.2.10:3306").reals
    assert [str(r.address) for r in reals] == ["198.51.100.1", "198.51.100.2", "198.51.100.3"]


def test_real_host_name_and_ipv6():
    (r,) = virtual("real=www.example:80 gate").reals
    assert r.address == ip_address("192.0.2.80")
    (r6,) = virtual("real6=[2001:db8::5]:80 gate 2", head="virtual6=[2001:db8::1]:80").reals
    assert (r6.endpoint, r6.weight) == ("[2001:db8::5]:80", 2)


def test_fwmark_real_without_port_is_port_0():
    (r,) = virtual("real=10.0.0.5 gate", head="virtual=5").reals
    assert r.port == 0


def test_fallback6_in_virtual6():
    v = virtual("fallback6=[::1] masq", head="virtual6=[2001:db8::1]:80")
    assert v.fallback is not None
    assert (str(v.fallback.address), v.fallback.port) == ("::1", 80)


def test_comments_blank_lines_and_block_end():
    cfg = config(
        "# sample\nquiescent=no\n\nvirtual=192.0.2.10:80\n    # comment inside\n"
        "\treal=10.0.0.1:80 gate  # trailing\n\nvirtual=192.0.2.11:80\n    real=10.0.0.2:80 gate\n"
        "checkinterval=7\n"
    )
    assert [len(v.reals) for v in cfg.virtuals] == [1, 1]
    assert cfg.checkinterval == 7.0
