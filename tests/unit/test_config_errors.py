# ruff: noqa: E501  (the expected messages are kept whole, one per line)
"""Every configuration error and warning, asserted exactly: path, line, column and text.

Each case is ldirectord.cf text and the diagnostics healthd reports for it, in order.
Many of these inputs are silently accepted (or misread) by ldirectord.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthd.config import (
    MAX_ERRORS,
    ConfigErrors,
    StaticResolver,
    format_errors,
    parse_text,
    parse_text_with_warnings,
)

RESOLVER = StaticResolver(services={"http": 80})

CASES = [
    (
        "virtual=192.0.2.10\n",
        [
            "t.cf:1:9: error: virtual address '192.0.2.10' has no port (ldirectord reads this as a firewall mark); write ADDRESS:PORT, or a plain number for a firewall mark",
        ],
    ),
    (
        "virtual=192.0.2.10.80\n",
        [
            "t.cf:1:9: error: invalid IPv4 address '192.0.2.10.80'",
        ],
    ),
    (
        "virtual=192.0.2.010:80\n",
        [
            "t.cf:1:9: error: invalid IPv4 address '192.0.2.010': leading zeros are ambiguous (ldirectord reads them as octal)",
        ],
    ),
    (
        "virtual=192.0.2.256:80\n",
        [
            "t.cf:1:9: error: invalid IPv4 address '192.0.2.256'",
        ],
    ),
    (
        "virtual=192.0.2.10:99999\n",
        [
            "t.cf:1:20: error: port 99999 is out of range (0-65535)",
        ],
    ),
    (
        "virtual=192.0.2.10:80 junk\n",
        [
            "t.cf:1:23: error: unexpected text after the virtual address",
        ],
    ),
    (
        "virtual=[2001:db8::1]:80\n",
        [
            't.cf:1:9: error: cannot specify an IPv6 address here; use "virtual6" instead',
        ],
    ),
    (
        "virtual6=2001:db8::1:80\n",
        [
            "t.cf:1:10: error: an IPv6 address needs brackets: [2001:db8::1:80] (or [ADDRESS]:PORT)",
        ],
    ),
    (
        "virtual6=[2001:db8::zz]:80\n",
        [
            "t.cf:1:11: error: invalid IPv6 address '2001:db8::zz'",
        ],
    ),
    (
        "virtual6=192.0.2.1:80\n",
        [
            't.cf:1:10: error: cannot specify an IPv4 address here; use "virtual" instead',
        ],
    ),
    (
        "virtual=0\n",
        [
            "t.cf:1:9: error: invalid firewall mark 0 (expected 1-4294967295)",
        ],
    ),
    (
        "virtual=nowhere.example:80\n",
        [
            "t.cf:1:9: error: cannot resolve host 'nowhere.example' to an IPv4 address",
        ],
    ),
    (
        "virtual=192.0.2.10:nosuchservice\n",
        [
            "t.cf:1:20: error: unknown service name 'nosuchservice' for tcp (not in /etc/services)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=192.0.2.11;80 gate\n",
        [
            "t.cf:2:20: error: invalid character ';' in address '192.0.2.11;80'",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real = 10.0.0.5:80 gatee 2\n",
        [
            "t.cf:2:24: error: unknown forwarding method 'gatee' (expected gate, masq or ipip)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.5:80\n",
        [
            "t.cf:2:21: error: missing forwarding method after the address (gate, masq or ipip)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.5:80 gate weight=10\n",
        [
            "t.cf:2:27: error: write the weight as a plain number after the method: 'gate 10' (ldirectord rejects 'weight=10')",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.5:80 gate 70000\n",
        [
            "t.cf:2:27: error: invalid weight '70000' (expected a whole number from 0 to 65535)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.5:80 gate 1 u:100 l:50\n",
        [
            "t.cf:2:29: error: 'u:' must come after 'l:' (ldirectord silently drops a 'u:' written first)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.5:80 gate 1 l:100 u:50\n",
        [
            "t.cf:2:29: error: lower threshold 100 is above the upper threshold 50",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.5:80 gate 1 l:50\n",
        [
            "t.cf:2:29: error: lower threshold 50 needs an upper threshold 'u:N' with N >= 50",
        ],
    ),
    (
        'virtual=192.0.2.10:80\n    real=10.0.0.5:80 gate 1 "/x"\n',
        [
            't.cf:2:33: error: a per-real request needs a receive string too: "REQUEST", "RECEIVE"',
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.9->10.0.0.5:80 gate\n",
        [
            "t.cf:2:10: error: invalid range 10.0.0.9->10.0.0.5: the first address is above the last",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.1:80->10.0.0.5 gate\n",
        [
            "t.cf:2:18: error: write the port after the last address of a range: A->B:PORT",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.5:80 gate\n    real=10.0.0.5 gate\n",
        [
            "t.cf:3:5: warning: duplicate real server 10.0.0.5:80 in this virtual service (first at line 2); the kernel holds it once, so healthd keeps the first line's weight and options",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real6=[2001:db8::5]:80 gate\n",
        [
            "t.cf:2:5: error: cannot specify 'real6' in a virtual block; use 'real' instead",
        ],
    ),
    (
        "virtual6=[2001:db8::1]:80\n    real=10.0.0.5 gate\n",
        [
            "t.cf:2:5: error: cannot specify 'real' in a virtual6 block; use 'real6' instead",
        ],
    ),
    (
        "virtual6=[2001:db8::1]:80\n    real6=[2001:db8::5]->[2001:db8::6] gate\n",
        [
            "t.cf:2:11: error: address ranges are supported for IPv4 only",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=unknown.example:80 gate\n",
        [
            "t.cf:2:10: error: cannot resolve host 'unknown.example' to an IPv4 address",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    scheduler=Foo1\n",
        [
            "t.cf:2:15: error: unknown scheduler 'Foo1' (expected rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)",
        ],
    ),
    (
        'virtual=192.0.2.10:80\n    scheduler=wrr # weighted\n    request="/a#b"\n    receive="ok#fine"\n',
        [
            "t.cf:3:16: warning: ldirectord would reject this line (Unknown command: it cuts the line at the '#', inside quotes too)",
            "t.cf:4:16: warning: ldirectord would reject this line (Unknown command: it cuts the line at the '#', inside quotes too)",
        ],
    ),
    (
        # ldirectord cuts every virtual-block line at its first '#': it would read /opt/check
        "virtual=192.0.2.10:80\n    checkcommand=/opt/check#2\n    servicename=Shop#1 # c\n",
        [
            "t.cf:2:28: error: '#' inside a value (ldirectord cuts the line here and reads checkcommand=/opt/check); quote the value to keep the '#', or put a blank before a comment",
            "t.cf:3:21: error: '#' inside a value (ldirectord cuts the line here and reads servicename=Shop); quote the value to keep the '#', or put a blank before a comment",
        ],
    ),
    (
        # after a blank line the block has ended: the line's real problem is its indentation
        "virtual=192.0.2.10:80\n\n    checkcommand=/opt/check#2\n",
        [
            "t.cf:3:5: error: indented 'checkcommand' outside a virtual block (the blank line 2 ended the virtual block of line 1)",
        ],
    ),
    (
        'virtual=192.0.2.10:80\n    real=10.0.0.5:80 gate 1 "a#b", "ok"#x\n',
        [
            "t.cf:2:40: error: '#' inside a value (ldirectord cuts the line here and reads real=10.0.0.5:80 gate 1 \"a#b\", \"ok\"); quote the value to keep the '#', or put a blank before a comment",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    schedflags=sh-fallback,sh-prot\n",
        [
            "t.cf:2:28: error: unknown scheduler flag 'sh-prot' (expected sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2, flag-3)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    checktimeout=0\n",
        [
            "t.cf:2:18: error: invalid checktimeout '0' (expected a number of seconds greater than 0)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    checkinterval=5s\n",
        [
            "t.cf:2:19: error: invalid checkinterval '5s' (expected a number of seconds greater than 0)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    failurecount=-1\n",
        [
            "t.cf:2:18: error: invalid failurecount '-1' (expected a whole number greater than 0)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    checkport=65536\n",
        [
            "t.cf:2:15: error: invalid checkport '65536' (expected a port from 1 to 65535)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    checktype=xyz9\n",
        [
            "t.cf:2:15: error: unknown checktype 'xyz9' (expected connect, negotiate, ping, external, external-perl, on, off or a number)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    service=http extra\n",
        [
            "t.cf:2:13: error: unknown service 'http extra' (expected one of dns, ftp, http, http_proxy, https, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pgsql, pop, pops, radius, simpletcp, sip, smtp, submission)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    protocol=fwm\n",
        [
            "t.cf:2:14: error: protocol must be tcp, udp or sctp if the virtual service is an address and port",
        ],
    ),
    (
        "virtual=5\n    protocol=tcp\n",
        [
            "t.cf:2:14: error: protocol must be fwm if the virtual service is a firewall mark",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    protocol=icmp\n",
        [
            "t.cf:2:14: error: unknown protocol 'icmp' (expected tcp, udp, sctp or fwm)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    httpmethod=POST\n",
        [
            "t.cf:2:16: error: httpmethod must be GET or HEAD, not 'POST'",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    quiescent=yes please\n",
        [
            "t.cf:2:15: error: quiescent must be 'yes' or 'no', not 'yes please'",
        ],
    ),
    (
        'virtual=192.0.2.10:80\n    request=""\n',
        [
            "t.cf:2:13: error: request must not be empty",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    persistent=60\n    netmask=255.255.0.255\n",
        [
            "t.cf:3:13: error: invalid netmask '255.255.0.255': a dotted quad netmask is required (e.g. 255.255.255.0)",
        ],
    ),
    (
        "virtual6=[2001:db8::1]:80\n    persistent=60\n    netmask=129\n",
        [
            "t.cf:3:13: error: invalid netmask '129': a prefix length between 1 and 128 is required",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    emailalertstatus=none,running\n",
        [
            "t.cf:2:22: error: emailalertstatus 'none' cannot be combined with other states",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    emailalertstatus=starting,sleeping\n",
        [
            "t.cf:2:31: error: unknown email alert status 'sleeping' (expected all, none, starting, running, stopping or reloading)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    smtp=mail.example.com:25\n",
        [
            "t.cf:2:10: error: invalid SMTP server address 'mail.example.com:25'",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    fallback=127.0.0.1:80 gatee\n",
        [
            "t.cf:2:27: error: unknown forwarding method 'gatee' (expected gate, masq or ipip)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    fallback6=[::1]:80\n",
        [
            "t.cf:2:5: error: cannot specify 'fallback6' in a virtual block; use 'fallback' instead",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    autoreload=yes\n",
        [
            "t.cf:2:5: error: 'autoreload' is only allowed in the global section",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    timeout=5\n",
        [
            "t.cf:2:5: error: timeout directive deprecated in favour of checktimeout and negotiatetimeout",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    connecttimeout=5\n",
        [
            "t.cf:2:5: error: connecttimeout directive deprecated in favour of negotiatetimeout",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    schedular=wrr\n",
        [
            "t.cf:2:5: error: unknown directive 'schedular'; did you mean 'scheduler'?",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.5 gate\n\n    real=10.0.0.6 gate\n",
        [
            "t.cf:4:5: error: indented 'real' outside a virtual block (the blank line 3 ended the virtual block of line 1)",
        ],
    ),
    (
        "real=10.0.0.5 gate\n",
        [
            "t.cf:1:1: error: 'real' is only allowed inside a virtual block",
        ],
    ),
    (
        "timeout=5\n",
        [
            "t.cf:1:1: error: timeout directive deprecated in favour of checktimeout and negotiatetimeout",
        ],
    ),
    (
        "connecttimeout=5\n",
        [
            "t.cf:1:1: error: connecttimeout directive deprecated in favour of negotiatetimeout",
        ],
    ),
    (
        "supervised=maybe\n",
        [
            "t.cf:1:12: error: supervised must be 'yes' or 'no', not 'maybe'",
        ],
    ),
    (
        "quiescent=yes # comment\nquiescent=no\n",
        [
            "t.cf:1:15: warning: ldirectord would reject this line (quiescent must be 'yes' or 'no': the comment is part of the value there)",
            "t.cf:2:1: warning: 'quiescent' is set again; this overrides the value of line 1",
        ],
    ),
    (
        "checkcount=3\n",
        [
            "t.cf:1:1: warning: checkcount is deprecated and slated for removal; please see 'failurecount' (it still sets the number of ping attempts)",
        ],
    ),
    (
        "supervised\n",
        [
            "t.cf:1:1: warning: please update your config not to use a bare supervised directive (write supervised=yes)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\nvirtual=192.0.2.10:80\n",
        [
            "t.cf:2:9: error: duplicate virtual server tcp/192.0.2.10:80 (first defined at line 1)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    virtual=192.0.2.11:80\n",
        [
            "t.cf:2:5: error: 'virtual' must start at the beginning of the line (no indentation)",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    ops=yes\n    netmask=255.255.255.0\n",
        [
            "t.cf:2:5: warning: ops has no effect unless protocol is udp",
            "t.cf:3:5: warning: netmask has no effect without persistent",
        ],
    ),
    (
        "virtual=192.0.2.10:80\n\treal=10.0.0.5:80\tgatee\n",
        [
            "t.cf:2:19: error: unknown forwarding method 'gatee' (expected gate, masq or ipip)",
        ],
    ),
    (
        'emailalert=""\n',
        [
            "t.cf:1:12: error: emailalert must not be empty",
        ],
    ),
    (
        "emailalert=a@example.com,,b@example.com\n",
        [
            "t.cf:1:26: error: empty e-mail address in the list",
        ],
    ),
    (
        "fork=yes\nfork=no\n",
        [
            "t.cf:2:1: warning: 'fork' is set again; this overrides the value of line 1",
        ],
    ),
    ("virtual=\n", ["t.cf:1:1: error: 'virtual' needs an address:port or a firewall mark"]),
    ("virtual\n", ["t.cf:1:1: error: 'virtual' needs an address:port or a firewall mark"]),
    ("checktimeout\n", ["t.cf:1:1: error: 'checktimeout' needs a value (checktimeout=...)"]),
    ("fallback=\n", ["t.cf:1:10: error: fallback needs an address"]),
    (
        "virtual=192.0.2.10:80\n    real=\n",
        ["t.cf:2:10: error: real needs an address and a forwarding method"],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.5:80 gate 1 l:1 l:2\n",
        ["t.cf:2:33: error: 'l:' is given twice"],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.5:80 gate 1 junk\n",
        ["t.cf:2:29: error: unexpected 'junk' in the real server line"],
    ),
    (
        "virtual=192.0.2.10:80\n    real=10.0.0.0->10.1.0.0 gate\n",
        ["t.cf:2:10: error: range 10.0.0.0->10.1.0.0 is too large (at most 65536 addresses)"],
    ),
    (
        'virtual=192.0.2.10:80\n    request="/a"b\n',
        ["t.cf:2:17: error: unexpected text after the closing quote"],
    ),
    ("virtual6=[2001:db8::1]x\n", ["t.cf:1:23: error: unexpected 'x' after the address"]),
    ("virtual6=[192.0.2.1]:80\n", ["t.cf:1:11: error: invalid IPv6 address '192.0.2.1'"]),
    (
        "virtual=192.0.2.10:80\n    fallback=127.0.0.1:80 gate extra\n",
        ["t.cf:2:32: error: unexpected 'extra' after the forwarding method"],
    ),
    ("virtual=:80\n", ["t.cf:1:9: error: missing address before ':'"]),
    (
        'emailalert="a b@example.com"\n',
        [
            "t.cf:1:13: error: invalid e-mail address 'a b@example.com' (write a name as \"Name\" <address>)"
        ],
    ),
    ("virtual6=[2001:db8::1:80\n", ["t.cf:1:10: error: missing ']' after the IPv6 address"]),
]


def diagnostics(text: str) -> list[str]:
    try:
        _, found = parse_text_with_warnings(text, "t.cf", resolver=RESOLVER, hostname="lb1")
    except ConfigErrors as errors:
        found = list(errors.diagnostics)
    return [str(d) for d in found]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_diagnostic(text, expected):
    assert diagnostics(text) == expected


def test_valid_text_with_hash_in_values_has_no_diagnostics():
    # quoted values keep their '#' in a block; global lines keep it anyway (ldirectord too)
    cfg = parse_text(
        'callback=/usr/local/bin/cb#1\nvirtual=192.0.2.10:80\n    request="/a#b"\n'
        '    receive="ok#fine"\n',
        "t.cf",
        resolver=RESOLVER,
    )
    assert (cfg.virtuals[0].check.request, cfg.virtuals[0].check.receive) == ("/a#b", "ok#fine")
    assert cfg.callback == "/usr/local/bin/cb#1"


def test_rendered_with_source_line_and_caret():
    text = "# line 1\nvirtual=192.0.2.10:80\n    real = 10.0.0.5:80 gatee 2\n"
    with pytest.raises(ConfigErrors) as info:
        parse_text(text, "/etc/ha.d/ldirectord.cf", resolver=RESOLVER)
    assert format_errors(info.value) == (
        "/etc/ha.d/ldirectord.cf:3:24: error: unknown forwarding method 'gatee' "
        "(expected gate, masq or ipip)\n"
        "        real = 10.0.0.5:80 gatee 2\n"
        "                           ^~~~~"
    )


def test_caret_under_tab_indented_line():
    with pytest.raises(ConfigErrors) as info:
        parse_text("virtual=192.0.2.10:80\n\treal=10.0.0.5:80 gatee\n", "t.cf", resolver=RESOLVER)
    assert format_errors(info.value).splitlines()[1:] == [
        "        real=10.0.0.5:80 gatee",
        "                         ^~~~~",
    ]


def test_every_error_is_collected():
    text = "virtual=192.0.2.10:80\n    scheduler=Foo\n    real=10.0.0.1 gatee\nfork=maybe\n"
    with pytest.raises(ConfigErrors) as info:
        parse_text(text, "t.cf", resolver=RESOLVER)
    assert [(d.loc.line, d.loc.col) for d in info.value.diagnostics if d.loc] == [
        (2, 15),
        (3, 19),
        (4, 6),
    ]
    assert info.value.summary() == "3 configuration errors"


def test_errors_are_capped():
    text = "".join(f"fork=bad{i}\n" for i in range(MAX_ERRORS + 10))
    with pytest.raises(ConfigErrors) as info:
        parse_text(text, "t.cf", resolver=RESOLVER)
    found = list(info.value.diagnostics)
    assert len(found) == MAX_ERRORS + 1
    assert str(found[-1]) == f"error: too many errors; stopped after {MAX_ERRORS}"


def test_unreadable_file_is_one_error(tmp_path):
    from healthd.config import load

    with pytest.raises(ConfigErrors) as info:
        load(str(tmp_path / "missing.cf"))
    assert [str(d) for d in info.value.diagnostics] == [
        f"error: cannot read {tmp_path / 'missing.cf'}: No such file or directory"
    ]


def _failure(text: str) -> ConfigErrors | None:
    try:
        parse_text(text, "fuzz.cf", resolver=RESOLVER, hostname="lb1")
    except ConfigErrors as errors:
        return errors
    return None


@settings(deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises_anything_but_config_errors(text):
    failure = _failure(text)
    if failure is not None:
        assert failure.errors
        assert format_errors(failure)


LINES = st.sampled_from(
    [
        "virtual=192.0.2.10:80", "virtual=5", "virtual6=[2001:db8::1]:80", "    real=10.0.0.1 gate",
        "    real=10.0.0.1->10.0.0.3:81 masq 2", '    request="x"', "    real6=[::1] gate", "",
        "quiescent=yes", "    fallback=127.0.0.1", "    checktype=3", "    scheduler=rr",
        "# c", "\tprotocol=udp", "real=1.2.3.4 gate", "    weight=3", "fallback6=[::1]:80",
    ]
)  # fmt: skip


@settings(deadline=None)
@given(st.lists(LINES, max_size=12))
def test_config_like_text_never_raises_anything_but_config_errors(lines):
    failure = _failure("\n".join(lines))
    if failure is not None:
        assert failure.errors


def test_warnings_list_renders_carets_from_the_file(tmp_path):
    from healthd.config import load_with_warnings

    path = tmp_path / "w.cf"
    path.write_text("\ufeffcheckcount=2\n")
    _, warnings = load_with_warnings(str(path), resolver=RESOLVER)
    own = [w for w in warnings if not w.ldirectord]
    assert format_errors(own).splitlines()[1:] == ["    checkcount=2", "    ^~~~~~~~~~"]
    # ldirectord reads the byte-order mark as part of the first line
    assert [w.message for w in warnings if w.ldirectord] == [
        "ldirectord would reject this line (the file starts with a byte-order mark; save it "
        "without)"
    ]


def test_a_global_fallback_that_does_not_resolve_is_reported_once():
    text = "fallback=nowhere.example\nvirtual=192.0.2.1:80\nvirtual=192.0.2.2:80\n"
    assert diagnostics(text) == [
        "t.cf:1:10: error: cannot resolve host 'nowhere.example' to an IPv4 address"
    ]


def test_reals_are_checked_even_when_the_virtual_does_not_resolve():
    text = "virtual=nowhere.example:80\n    real=10.0.0.1 gatee\n    real=elsewhere.example gate\n"
    assert diagnostics(text) == [
        "t.cf:1:9: error: cannot resolve host 'nowhere.example' to an IPv4 address",
        "t.cf:2:19: error: unknown forwarding method 'gatee' (expected gate, masq or ipip)",
        "t.cf:3:10: error: cannot resolve host 'elsewhere.example' to an IPv4 address",
    ]
