# ruff: noqa: E501  (the expected messages are kept whole, one per line)
"""A rejected form of every directive, with its exact message (path:line:col).

test_config_errors.py holds the malformed inputs that ldirectord silently misreads.
"""

from __future__ import annotations

import pytest

from healthd.config import ConfigErrors, StaticResolver, parse_text
from healthd.config.parser import SPECS

REJECTED = [
    ("autoreload=maybe\n", "t.cf:1:12: error: autoreload must be 'yes' or 'no', not 'maybe'"),
    ('callback=""\n', "t.cf:1:10: error: callback must not be empty"),
    ('logfile=""\n', "t.cf:1:9: error: logfile must not be empty"),
    ('execute=""\n', "t.cf:1:9: error: execute must not be empty"),
    ("fork=1\n", "t.cf:1:6: error: fork must be 'yes' or 'no', not '1'"),
    ("supervised=on\n", "t.cf:1:12: error: supervised must be 'yes' or 'no', not 'on'"),
    (
        "readdquiescent=yes no\n",
        "t.cf:1:16: error: readdquiescent must be 'yes' or 'no', not 'yes no'",
    ),
    ('emailalertfrom=""\n', "t.cf:1:16: error: emailalertfrom must not be empty"),
    ('maintenancedir=""\n', "t.cf:1:16: error: maintenancedir must not be empty"),
    (
        "resync_interval=0\n",
        "t.cf:1:17: error: invalid resync_interval '0' (expected a number of seconds greater than 0)",
    ),
    (
        "max_in_flight=0\n",
        "t.cf:1:15: error: invalid max_in_flight '0' (expected a whole number greater than 0)",
    ),
    (
        "http_listen=9188\n",
        "t.cf:1:13: error: invalid http_listen '9188' (expected ADDRESS:PORT, e.g. 127.0.0.1:9188 or [::1]:9188)",
    ),
    (
        "http_listen=::1:9188\n",
        "t.cf:1:13: error: invalid http_listen address '::1' (write an IPv6 address in brackets)",
    ),
    (
        "http_listen=localhost:9188\n",
        "t.cf:1:13: error: invalid http_listen address 'localhost' (expected an IP address)",
    ),
    (
        "http_listen=127.0.0.1:65536\n",
        "t.cf:1:13: error: invalid http_listen '127.0.0.1:65536' (expected ADDRESS:PORT, e.g. 127.0.0.1:9188 or [::1]:9188)",
    ),
    ('state_file=""\n', "t.cf:1:12: error: state_file must not be empty"),
    # the cluster directives (healthd/config/cluster.py; more in test_config_cluster.py)
    (
        "syncd=sometimes\n",
        "t.cf:1:7: error: invalid syncd 'sometimes' (expected master, backup, both or no)",
    ),
    (
        "syncd_interface=a/b\n",
        "t.cf:1:17: error: invalid syncd_interface 'a/b' (expected an interface name)",
    ),
    (
        "syncd_id=256\n",
        "t.cf:1:10: error: invalid syncd_id '256' (expected a whole number from 0 to 255)",
    ),
    (
        "virtual=192.0.2.10:80\n    announce_table=0\n",
        "t.cf:2:20: error: invalid announce_table 0 (expected a table from 1 to 4294967295)",
    ),
    (
        "virtual=192.0.2.10:80\n    announce_interface=x/y\n",
        "t.cf:2:24: error: invalid announce_interface 'x/y' (expected an interface name)",
    ),
    (
        "virtual=192.0.2.10:80\n    announce_fallback=maybe\n",
        "t.cf:2:23: error: announce_fallback must be 'yes' or 'no', not 'maybe'",
    ),
    (
        "command_user=two words\n",
        "t.cf:1:17: error: invalid command_user 'two words' (no blanks allowed)",
    ),
    (
        "virtual=192.0.2.10:80\n    checktimeout=abc\n",
        "t.cf:2:18: error: invalid checktimeout 'abc' (expected a number of seconds greater than 0)",
    ),
    (
        "virtual=192.0.2.10:80\n    negotiatetimeout=-1\n",
        "t.cf:2:22: error: invalid negotiatetimeout '-1' (expected a number of seconds greater than 0)",
    ),
    (
        "virtual=192.0.2.10:80\n    checkinterval=1m\n",
        "t.cf:2:19: error: invalid checkinterval '1m' (expected a number of seconds greater than 0)",
    ),
    (
        "virtual=192.0.2.10:80\n    checkcount=0\n",
        "t.cf:2:16: error: invalid checkcount '0' (expected a whole number greater than 0)",
    ),
    (
        "virtual=192.0.2.10:80\n    failurecount=1.5\n",
        "t.cf:2:18: error: invalid failurecount '1.5' (expected a whole number greater than 0)",
    ),
    (
        "virtual=192.0.2.10:80\n    fallback=127.0.0.1:80 nat\n",
        "t.cf:2:27: error: unknown forwarding method 'nat' (expected gate, masq or ipip)",
    ),
    (
        "virtual6=[2001:db8::1]:80\n    fallback6=::1 gate\n",
        "t.cf:2:15: error: an IPv6 address needs brackets: [::1] (or [ADDRESS]:PORT)",
    ),
    (
        'virtual=192.0.2.10:80\n    fallbackcommand=""\n',
        "t.cf:2:21: error: fallbackcommand must not be empty",
    ),
    (
        "virtual=192.0.2.10:80\n    quiescent=true\n",
        "t.cf:2:15: error: quiescent must be 'yes' or 'no', not 'true'",
    ),
    (
        "virtual=192.0.2.10:80\n    cleanstop=No\n",
        "t.cf:2:15: error: cleanstop must be 'yes' or 'no', not 'No'",
    ),
    (
        'virtual=192.0.2.10:80\n    emailalert="a@example.com,"\n',
        "t.cf:2:31: error: empty e-mail address in the list",
    ),
    (
        "virtual=192.0.2.10:80\n    emailalertfreq=-60\n",
        "t.cf:2:20: error: invalid emailalertfreq '-60' (expected a whole number)",
    ),
    (
        "virtual=192.0.2.10:80\n    emailalertstatus=sometimes\n",
        "t.cf:2:22: error: unknown email alert status 'sometimes' (expected all, none, starting, running, stopping or reloading)",
    ),
    (
        "virtual=192.0.2.10:80\n    smtp=[::1]\n",
        "t.cf:2:10: error: invalid SMTP server address '[::1]'",
    ),
    (
        "virtual=192.0.2.10:80\n    rise=none\n",
        "t.cf:2:10: error: invalid rise 'none' (expected a whole number greater than 0)",
    ),
    (
        "virtual=192.0.2.10:80\n    tls_verify=maybe\n",
        "t.cf:2:16: error: tls_verify must be 'yes' or 'no', not 'maybe'",
    ),
    (
        'virtual=192.0.2.10:80\n    tls_cafile=""\n',
        "t.cf:2:16: error: tls_cafile must not be empty",
    ),
    (
        'virtual=192.0.2.10:80\n    tls_hostname="a b"\n',
        "t.cf:2:20: error: invalid tls_hostname 'a b' (no blanks allowed)",
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.1:http: gate\n",
        "t.cf:2:19: error: invalid port 'http:'",
    ),
    (
        "virtual6=[2001:db8::1]:80\n    real6=[2001:db8::1 gate\n",
        "t.cf:2:11: error: missing ']' after the IPv6 address",
    ),
    (
        "virtual=192.0.2.10:80\n    checktype=tcp\n",
        "t.cf:2:15: error: unknown checktype 'tcp' (expected connect, negotiate, ping, external, external-perl, on, off or a number)",
    ),
    (
        "virtual=192.0.2.10:80\n    service=HTTP\n",
        "t.cf:2:13: error: unknown service 'HTTP' (expected one of dns, ftp, http, http_proxy, https, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pgsql, pop, pops, radius, simpletcp, sip, smtp, submission)",
    ),
    (
        "virtual=192.0.2.10:80\n    checkport=0\n",
        "t.cf:2:15: error: invalid checkport '0' (expected a port from 1 to 65535)",
    ),
    ('virtual=192.0.2.10:80\n    request=""\n', "t.cf:2:13: error: request must not be empty"),
    ('virtual=192.0.2.10:80\n    receive=""\n', "t.cf:2:13: error: receive must not be empty"),
    (
        "virtual=192.0.2.10:80\n    httpmethod=PUT\n",
        "t.cf:2:16: error: httpmethod must be GET or HEAD, not 'PUT'",
    ),
    (
        'virtual=192.0.2.10:80\n    virtualhost="www example"\n',
        "t.cf:2:21: error: invalid virtualhost 'www example' (no blanks allowed)",
    ),
    ('virtual=192.0.2.10:80\n    login=""\n', "t.cf:2:11: error: login must not be empty"),
    ('virtual=192.0.2.10:80\n    passwd=""\n', "t.cf:2:12: error: passwd must not be empty"),
    ('virtual=192.0.2.10:80\n    database=""\n', "t.cf:2:14: error: database must not be empty"),
    ('virtual=192.0.2.10:80\n    secret=""\n', "t.cf:2:12: error: secret must not be empty"),
    (
        'virtual=192.0.2.10:80\n    checkcommand=""\n',
        "t.cf:2:18: error: checkcommand must not be empty",
    ),
    (
        "virtual=192.0.2.10:80\n    scheduler=WRR\n",
        "t.cf:2:15: error: unknown scheduler 'WRR' (expected rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)",
    ),
    (
        "virtual=192.0.2.10:80\n    persistent=1h\n",
        "t.cf:2:16: error: invalid persistent '1h' (expected a whole number)",
    ),
    (
        "virtual=192.0.2.10:80\n    netmask=24\n",
        "t.cf:2:13: error: invalid netmask '24': a dotted quad netmask is required (e.g. 255.255.255.0)",
    ),
    (
        "virtual=192.0.2.10:80\n    protocol=TCP\n",
        "t.cf:2:14: error: unknown protocol 'TCP' (expected tcp, udp, sctp or fwm)",
    ),
    ("virtual=192.0.2.10:80\n    ops=1\n", "t.cf:2:9: error: ops must be 'yes' or 'no', not '1'"),
    (
        "virtual=192.0.2.10:80\n    schedflags=sh-port,\n",
        "t.cf:2:24: error: unknown scheduler flag '' (expected sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2, flag-3)",
    ),
    (
        'virtual=192.0.2.10:80\n    monitorfile=""\n',
        "t.cf:2:17: error: monitorfile must not be empty",
    ),
    # servicename and comment may be empty (ldirectord: `(.*)`); a glued '#' is cut there
    (
        "virtual=192.0.2.10:80\n    servicename=Shop#1\n",
        "t.cf:2:21: error: '#' inside a value (ldirectord cuts the line here and reads "
        "servicename=Shop); quote the value to keep the '#', or put a blank before a comment",
    ),
    (
        "virtual=192.0.2.10:80\n    comment=rack#4\n",
        "t.cf:2:17: error: '#' inside a value (ldirectord cuts the line here and reads "
        "comment=rack); quote the value to keep the '#', or put a blank before a comment",
    ),
    ('virtual=192.0.2.10:80\n    load=""\n', "t.cf:2:10: error: load must not be empty"),
]


@pytest.mark.parametrize(("text", "expected"), REJECTED)
def test_directive_rejected(text, expected):
    with pytest.raises(ConfigErrors) as info:
        parse_text(text, "t.cf", resolver=StaticResolver(), hostname="lb1")
    assert [str(d) for d in info.value.diagnostics] == [expected]


def test_every_directive_has_a_rejected_case():
    keys = {text.splitlines()[-1].strip().partition("=")[0] for text, _ in REJECTED}
    assert set(SPECS) - keys == set()
