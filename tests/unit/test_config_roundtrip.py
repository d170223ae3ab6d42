"""Property: a parsed model rendered back to ldirectord.cf parses to an equal model.

Configurations are generated from the directives' accepted forms, so the property covers
inheritance, the timeout cross-fallback, guessed services, fallbacks, ranges and reals.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from healthd.config import StaticResolver, dump_model, parse_text, render_config

RESOLVER = StaticResolver()
HOST = "lb1.example"

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/._-#", min_size=1, max_size=12)
SECONDS = st.sampled_from(["1", "2", "2.5", "10", "30"])
YESNO = st.sampled_from(["yes", "no"])
FORWARD = st.sampled_from(["gate", "masq", "ipip"])

GLOBAL_LINES = st.one_of(
    SECONDS.map(lambda s: f"checktimeout={s}"),
    SECONDS.map(lambda s: f"negotiatetimeout={s}"),
    SECONDS.map(lambda s: f"checkinterval={s}"),
    st.integers(1, 5).map(lambda n: f"failurecount={n}"),
    st.integers(1, 5).map(lambda n: f"checkcount={n}"),
    YESNO.map(lambda y: f"quiescent={y}"),
    YESNO.map(lambda y: f"cleanstop={y}"),
    YESNO.map(lambda y: f"autoreload={y}"),
    YESNO.map(lambda y: f"readdquiescent={y}"),
    st.tuples(st.integers(1, 9), FORWARD).map(lambda t: f"fallback=127.0.0.{t[0]} {t[1]}"),
    st.integers(1, 65535).map(lambda p: f"fallback6=[::1]:{p}"),
    st.sampled_from(["emailalert=a@example.com", "emailalertstatus=none", "smtp=mx.example"]),
    WORD.map(lambda w: f'fallbackcommand="/bin/{w}"'),
    st.integers(1, 4).map(lambda n: f"rise={n}"),
)

GLOBAL_ONLY = ("autoreload", "readdquiescent", "fallback")
VIRTUAL_LINES = st.one_of(
    GLOBAL_LINES.filter(lambda line: not line.startswith(GLOBAL_ONLY)),
    st.sampled_from(
        ["checktype=connect", "checktype=ping", "checktype=on", "checktype=off", "checktype=4",
         "checktype=external", "service=ftp", "service=sip", "service=http", "service=none",
         "scheduler=rr", "scheduler=sh", "persistent=300", "ops=yes", "httpmethod=HEAD",
         "schedflags=sh-port", "tls_verify=yes", "tls_hostname=www.example"]
    ),
    WORD.map(lambda w: f'request="{w}"'),
    WORD.map(lambda w: f'receive="{w}"'),
    WORD.map(lambda w: f'login="{w}"'),
    WORD.map(lambda w: f'passwd="{w} x"'),
    WORD.map(lambda w: f"comment=\"{w}\""),
    st.integers(1, 65535).map(lambda p: f"checkport={p}"),
)  # fmt: skip


@st.composite
def reals(draw: st.DrawFn, six: bool) -> list[str]:
    count = draw(st.integers(0, 3))
    out = []
    for i in range(count):
        port = draw(st.one_of(st.none(), st.integers(0, 65535)))
        where = f"[2001:db8::{i + 1}]" if six else f"10.0.{i}.1"
        if not six and draw(st.booleans()):
            where += f"->10.0.{i}.{draw(st.integers(1, 4))}"
        where += "" if port is None else f":{port}"
        line = f"{'real6' if six else 'real'}={where} {draw(FORWARD)}"
        line += draw(st.sampled_from(["", " 0", " 7"]))
        if draw(st.booleans()):
            line += f' "{draw(WORD)}", "{draw(WORD)}"'
        line += draw(st.sampled_from(["", " l:5 u:5", " u:9", " l:5 u:9"]))
        out.append(line)
    return out


@st.composite
def virtual_blocks(draw: st.DrawFn, index: int) -> str:
    kind = draw(st.sampled_from(["v4", "v6", "fwm", "fwm6"]))
    port = draw(st.sampled_from([21, 53, 80, 443, 3306, 5060, 8080]))
    head = {
        "v4": f"virtual=192.0.2.{index + 1}:{port}",
        "v6": f"virtual6=[2001:db8:1::{index + 1}]:{port}",
        "fwm": f"virtual={index + 1}",
        "fwm6": f"virtual6={index + 1}",
    }[kind]
    body = draw(st.lists(VIRTUAL_LINES, max_size=6, unique_by=lambda s: s.partition("=")[0]))
    body += draw(reals(kind in ("v6", "fwm6")))
    if kind == "v4" and draw(st.booleans()):
        body.append(f"fallback=127.0.0.2 {draw(FORWARD)}")
    indent = draw(st.sampled_from(["    ", "\t"]))
    return "\n".join([head, *(indent + line for line in body)])


@st.composite
def configs(draw: st.DrawFn) -> str:
    glob = draw(st.lists(GLOBAL_LINES, max_size=6, unique_by=lambda s: s.partition("=")[0]))
    blocks = [draw(virtual_blocks(i)) for i in range(draw(st.integers(0, 4)))]
    return "\n".join(glob) + "\n\n" + "\n\n".join(blocks) + "\n"


@settings(deadline=None, max_examples=150)
@given(configs())
def test_render_then_parse_gives_an_equal_model(text: str):
    config = parse_text(text, "gen.cf", resolver=RESOLVER, hostname=HOST)
    rendered = render_config(config)
    again = parse_text(rendered, "gen.cf", resolver=RESOLVER, hostname=HOST)
    assert again == config
    assert dump_model(again) == json.loads(json.dumps(dump_model(config)))


def test_global_values_with_hash_round_trip_through_a_virtual_block():
    # a global value may hold '#' (ldirectord keeps it there); rendered into a block, it must
    # be quoted, since a '#' glued to an unquoted value in a block is an error
    text = (
        "fallbackcommand=/bin/fb#1\nemailalert=ops#1@example.com\ntls_hostname=www#1.example\n"
        "virtual=192.0.2.10:80\n    real=10.0.0.1:80 gate\n"
    )
    config = parse_text(text, "gen.cf", resolver=RESOLVER, hostname=HOST)
    assert config.virtuals[0].check.tls_hostname == "www#1.example"
    again = parse_text(render_config(config), "gen.cf", resolver=RESOLVER, hostname=HOST)
    assert again == config
