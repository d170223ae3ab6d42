"""Warnings where healthd accepts more than ldirectord, or reads a line differently.

Each case is a file healthd accepts; the warnings say which lines ldirectord would reject
(`ldirectord would reject this line (...)`) or read otherwise, at the line and column.
`strict=True` (configtest --strict) makes every one of them an error.
"""

# ruff: noqa: E501  (the expected messages are kept whole, one per line)

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from healthd.config import ConfigErrors, StaticResolver, parse_text_with_warnings

RESOLVER = StaticResolver(services={"http": 80})
BLOCK = "virtual=192.0.2.10:80\n    real=198.51.100.5:80 gate\n"
REJECT = "ldirectord would reject this line"
DIFFERS = "ldirectord reads this line differently"


def _upstream(text: str) -> list[str]:
    _, warnings = parse_text_with_warnings(text, "u.cf", resolver=RESOLVER, hostname="lb")
    assert all(w.severity == "warning" for w in warnings)
    return [str(w) for w in warnings if w.ldirectord]


CASES = [
    # healthd's own directives
    (
        "rise=2\n" + BLOCK,
        [f"u.cf:1:1: warning: {REJECT} (Unknown command: 'rise' is healthd's own directive)"],
    ),
    (
        "resync_interval=10\nmax_in_flight=64\n" + BLOCK + "    tls_verify=yes\n",
        [
            f"u.cf:1:1: warning: {REJECT} (Unknown command: 'resync_interval' is healthd's own directive)",
            f"u.cf:2:1: warning: {REJECT} (Unknown command: 'max_in_flight' is healthd's own directive)",
            f"u.cf:5:5: warning: {REJECT} (Unknown command: 'tls_verify' is healthd's own directive)",
        ],
    ),
    (BLOCK + "    protocol=sctp\n", [f"u.cf:3:5: warning: {REJECT} (protocol must be tcp or udp)"]),
    # trailing comments and blanks on global lines
    (
        "quiescent=yes # drain\n" + BLOCK,
        [
            f"u.cf:1:15: warning: {REJECT} (quiescent must be 'yes' or 'no': the comment is part of the value there)"
        ],
    ),
    (
        "autoreload=no  \n" + BLOCK,
        [
            f"u.cf:1:12: warning: {REJECT} (autoreload must be 'yes' or 'no': it keeps the blanks after the value)"
        ],
    ),
    ("checkinterval=5 # seconds\n" + BLOCK, []),  # ldirectord takes the first digits: same
    # a comment in a block: ldirectord cuts the line, so a yes/no keeps the blank before '#'
    (
        BLOCK + "    quiescent=yes # drain\n",
        [
            f"u.cf:3:19: warning: {REJECT} (quiescent must be 'yes' or 'no': it cuts the line at the '#', inside quotes too and keeps the blanks before it)"
        ],
    ),
    (BLOCK + "    scheduler=wlc # least loaded\n", []),
    # unquoted values where ldirectord needs quotes
    (
        BLOCK + "    request=/health\n    receive=OK\n",
        [
            f'u.cf:3:13: warning: {REJECT} (Unknown command: it needs the value in double quotes: request="...")',
            f'u.cf:4:13: warning: {REJECT} (Unknown command: it needs the value in double quotes: receive="...")',
        ],
    ),
    (
        "callback=/usr/local/bin/cb\n" + BLOCK,
        [
            f'u.cf:1:10: warning: {REJECT} (Unknown command: it needs the value in double quotes: callback="...")'
        ],
    ),
    (BLOCK + '    request="/health"\n    login="probe"\n', []),
    # '#' inside quotes in a block
    (
        BLOCK + '    passwd="pa#ss"\n',
        [
            f"u.cf:3:15: warning: {REJECT} (Unknown command: it cuts the line at the '#', inside quotes too)"
        ],
    ),
    # blanks ldirectord does not know
    (
        "checkinterval=5\u3000\n" + BLOCK,
        [],  # ldirectord takes the first digits and ignores the rest
    ),
    (
        "quiescent=yes\u3000\n" + BLOCK,
        [
            f"u.cf:1:14: warning: {REJECT} (quiescent must be 'yes' or 'no': U+3000 IDEOGRAPHIC SPACE is not a blank to ldirectord; use a space)"
        ],
    ),
    (
        "virtual=192.0.2.10:80\n    real=198.51.100.5:80\u00a0gate\n",
        [
            f"u.cf:2:25: warning: {REJECT} (invalid address for real server (wrong format): U+00A0 NO-BREAK SPACE is not a blank to ldirectord; use a space)"
        ],
    ),
    # indentation by Unicode blanks: ldirectord ends the block there; one warning only
    (
        "virtual=192.0.2.10:80\n\u3000\u3000\u3000\u3000real=198.51.100.5:80 gate\n    scheduler=wlc\n",
        [
            f"u.cf:2:1: warning: {REJECT} (Unknown command: U+3000 IDEOGRAPHIC SPACE is not a blank to ldirectord; use a space)"
        ],
    ),
    (
        BLOCK + "\u3000# a note\n",
        [
            f"u.cf:3:1: warning: {REJECT} (Unknown command: U+3000 IDEOGRAPHIC SPACE is not a blank to ldirectord; use a space)"
        ],
    ),
    # a line of blanks inside a block: ldirectord reads it as a directive
    (
        BLOCK + "     \n",
        [
            f"u.cf:3:1: warning: {REJECT} (Unknown command: a line of blanks inside a virtual block; make it empty)"
        ],
    ),
    (BLOCK + "    \n", []),  # four spaces: the block just ends, as for an empty line
    (BLOCK + "\t\n", []),
    # CRLF line ends
    (
        "quiescent=no\r\n" + BLOCK.replace("\n", "\r\n"),
        [
            f"u.cf:1:1: warning: {REJECT} (quiescent must be 'yes' or 'no': it keeps the carriage return of a CRLF line end; save with LF line ends)"
        ],
    ),
    # a byte-order mark
    (
        "\ufeff" + BLOCK,
        [f"u.cf:1:1: warning: {REJECT} (the file starts with a byte-order mark; save it without)"],
    ),
    # a service name as the port, and a real without a port: ldirectord reads them too
    ("virtual=192.0.2.10:http\n    real=198.51.100.5 gate\n", []),
    # readings that differ
    (
        "emailalertfrom=lvs@example.com # ops\n" + BLOCK,
        [
            f"u.cf:1:16: warning: {DIFFERS} (ldirectord reads emailalertfrom as 'lvs@example.com # ops'; it keeps the comment)"
        ],
    ),
    (
        'emailalertfrom="lvs@example.com"\n' + BLOCK,
        [
            f"u.cf:1:16: warning: {DIFFERS} (ldirectord reads emailalertfrom as '\"lvs@example.com\"'; it keeps the quotes)"
        ],
    ),
    ('emailalertfrom = "LVS Director" <lvs@example.com>\n' + BLOCK, []),
    (
        BLOCK + '    servicename="Shop"\n',
        [
            f"u.cf:3:17: warning: {DIFFERS} (ldirectord reads servicename as '\"Shop\"'; it keeps the quotes)"
        ],
    ),
    ('fallbackcommand="/usr/local/bin/fb"\n' + BLOCK, []),  # the shell removes them for ldirectord
    (
        "checktimeout=2.5\n" + BLOCK,
        [
            f"u.cf:1:14: warning: {DIFFERS} (ldirectord reads checktimeout=2: it takes the digits before the '.')"
        ],
    ),
    (
        'virtual=192.0.2.10:80\n    real=198.51.100.5:80 gate 2 "/health", "OK" u:100\n',
        [
            f"u.cf:2:33: warning: {DIFFERS} (ldirectord drops the per-real receive string, and any l:/u: after it, when the request starts with '/', and checks with the virtual's request and receive; write the request without the leading '/' for both to read it alike)"
        ],
    ),
    ('virtual=192.0.2.10:80\n    real=198.51.100.5:80 gate 2 "health", "OK" u:100\n', []),
    (
        BLOCK + "    checkinterval=3\n",
        [
            f"u.cf:3:5: warning: {DIFFERS} (ldirectord ignores a virtual's checkinterval unless fork=yes; healthd honours it)"
        ],
    ),
    ("fork=yes\n" + BLOCK + "    checkinterval=3\n", []),
    (
        BLOCK + '    receive="a\tb"\n',
        [f"u.cf:3:15: warning: {DIFFERS} (ldirectord reads each tab in it as 4 spaces)"],
    ),
    # lines healthd refuses get its error, not a second word about ldirectord
    ("virtual=192.0.2.10:80\n    real=198.51.100.5:80 gate weight 2\n", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_upstream_warning(text: str, expected: list[str]) -> None:
    assert _upstream(text) == expected


def test_a_file_ldirectord_reads_alike_has_no_such_warning() -> None:
    text = (
        "checktimeout=3\n"
        "checkinterval=5\n"
        "quiescent=yes\n"
        'logfile="/var/log/ldirectord.log"\n'
        'emailalert="ops@example.com"\n'
        "\n"
        "virtual=192.0.2.10:80\n"
        "\treal=198.51.100.5:80 masq 3\n"
        "\treal=198.51.100.6:80 masq 1 l:10 u:100\n"
        "\t# a comment line does not end the block\n"
        '\trequest="health.html"\n'
        '\treceive="OK"\n'
        "\tscheduler=wlc\n"
        "\tprotocol=tcp\n"
        "\tchecktype=negotiate\n"
        "\tservice=http\n"
        "\tfallback=127.0.0.1:80 gate\n"
        "\n"
        "virtual=7\n"
        "\treal=198.51.100.7 gate\n"
        "\tprotocol=fwm\n"
    )
    assert _upstream(text) == []


def test_strict_makes_them_errors_in_file_order() -> None:
    text = "rise=2\n" + BLOCK + "    request=/health\n"
    with pytest.raises(ConfigErrors) as caught:
        parse_text_with_warnings(text, "u.cf", resolver=RESOLVER, hostname="lb", strict=True)
    assert [str(e) for e in caught.value.errors] == [
        f"u.cf:1:1: error: {REJECT} (Unknown command: 'rise' is healthd's own directive)",
        f'u.cf:4:13: error: {REJECT} (Unknown command: it needs the value in double quotes: request="...")',
    ]


def test_strict_leaves_healthds_own_warnings_warnings() -> None:
    text = "checkcount=2\n" + BLOCK
    _, warnings = parse_text_with_warnings(text, "u.cf", resolver=RESOLVER, strict=True)
    assert [(w.severity, w.ldirectord) for w in warnings] == [("warning", False)]


def test_the_daemon_logs_each_warning_once_per_load(tmp_path) -> None:
    from healthd.daemon import default_loader

    path = tmp_path / "d.cf"
    path.write_text("rise=2\n" + BLOCK)
    with capture_logs() as captured:
        config = default_loader(str(path))
    assert len(config.virtuals) == 1
    logged = [e for e in captured if e["event"] == "config.warning"]
    assert len(logged) == 1
    assert f"{path}:1:1: warning: {REJECT} (Unknown command" in logged[0]["detail"]


# a real repeated in one virtual: ldirectord adds it again and the kernel refuses the second
KEEPS = "the kernel holds it once, so healthd keeps the first line's weight and options"


def test_a_repeated_real_warns_at_the_second_line_and_keeps_the_first() -> None:
    text = (
        "virtual=192.0.2.10:80\n"
        "    real=192.0.2.11:80 gate 3\n"
        "    real=192.0.2.12:80 gate\n"
        "    real=192.0.2.11 masq 7\n"
    )
    config, warnings = parse_text_with_warnings(text, "u.cf", resolver=RESOLVER, hostname="lb")
    assert [str(w) for w in warnings] == [
        f"u.cf:4:5: warning: duplicate real server 192.0.2.11:80 in this virtual service (first at line 2); {KEEPS}"
    ]
    assert warnings[0].ldirectord
    reals = config.virtuals[0].reals
    assert [(r.endpoint, r.forward.value, r.weight) for r in reals] == [
        ("192.0.2.11:80", "gate", 3),
        ("192.0.2.12:80", "gate", 1),
    ]


def test_a_range_that_overlaps_another_line_warns_once_per_first_line() -> None:
    text = (
        "virtual=192.0.2.10:80\n"
        "    real=192.0.2.20:80 gate 2\n"
        "    real=192.0.2.22:80 gate 4\n"
        "    real=192.0.2.19->192.0.2.23:80 gate 9\n"
        "    real=192.0.2.21:80 gate 5\n"
    )
    config, warnings = parse_text_with_warnings(text, "u.cf", resolver=RESOLVER, hostname="lb")
    assert [str(w) for w in warnings] == [
        f"u.cf:4:5: warning: duplicate real server 192.0.2.20:80 in this virtual service (first at line 2); {KEEPS}",
        f"u.cf:4:5: warning: duplicate real server 192.0.2.22:80 in this virtual service (first at line 3); {KEEPS}",
        f"u.cf:5:5: warning: duplicate real server 192.0.2.21:80 in this virtual service (first at line 4); {KEEPS}",
    ]
    weights = {r.endpoint: r.weight for r in config.virtuals[0].reals}
    assert weights == {
        "192.0.2.20:80": 2,
        "192.0.2.22:80": 4,
        "192.0.2.19:80": 9,
        "192.0.2.21:80": 9,
        "192.0.2.23:80": 9,
    }


def test_two_overlapping_ranges_say_how_many_more() -> None:
    text = "virtual=192.0.2.10:80\n    real=192.0.2.20->192.0.2.29 gate\n    real=192.0.2.25->192.0.2.34 masq\n"
    config, warnings = parse_text_with_warnings(text, "u.cf", resolver=RESOLVER, hostname="lb")
    assert [str(w) for w in warnings] == [
        "u.cf:3:5: warning: duplicate real servers 192.0.2.25:80, 192.0.2.26:80, 192.0.2.27:80 and 2 more in this virtual service (first at line 2); the kernel holds each once, so healthd keeps the first line's weight and options"
    ]
    assert [r.forward.value for r in config.virtuals[0].reals] == ["gate"] * 10 + ["masq"] * 5


def test_the_same_real_in_two_virtuals_is_no_duplicate() -> None:
    text = "virtual=192.0.2.10:80\n    real=192.0.2.11 gate\nvirtual=192.0.2.10:443\n    real=192.0.2.11 gate\n"
    assert _upstream(text) == []


def test_strict_makes_a_repeated_real_an_error() -> None:
    text = "virtual=192.0.2.10:80\n    real=192.0.2.11 gate\n    real=192.0.2.11:80 gate 2\n"
    with pytest.raises(ConfigErrors) as caught:
        parse_text_with_warnings(text, "u.cf", resolver=RESOLVER, hostname="lb", strict=True)
    assert [str(e) for e in caught.value.errors] == [
        f"u.cf:3:5: error: duplicate real server 192.0.2.11:80 in this virtual service (first at line 2); {KEEPS}"
    ]
