"""The cluster directives: announce_table/interface/fallback per virtual, syncd globally.

Their value syntax is in test_parser.py and test_parser_rejected.py; here the meaning:
names looked up (rt_tables, the interfaces here), the combinations refused at their line,
the dump and the ldirectord.cf rendering, and `configtest` exiting 2 on an unknown name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from healthd.cli import main
from healthd.config import ConfigErrors, StaticResolver, parse_text, parse_text_with_warnings
from healthd.config.dump import dump_model, render_config
from healthd.config.resolve import SystemResolver, rt_tables
from healthd.model import Announce, Syncd, SyncRole

RESOLVER = StaticResolver(
    tables={"main": 254, "anycast": 100}, interfaces=frozenset({"lo", "eth1"})
)
HEAD = "virtual=192.0.2.10:80\n    real=198.51.100.1:80 gate\n"


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        parse_text(text, "t.cf", resolver=RESOLVER, hostname="lb1")
    return [str(d) for d in info.value.diagnostics if d.severity == "error"]


def test_a_table_name_is_read_from_rt_tables():
    config = parse_text(f"{HEAD}    announce_table=anycast\n", resolver=RESOLVER)
    assert config.virtuals[0].announce == Announce(table=100)


def test_an_unknown_table_name_is_an_error_at_its_value():
    assert errors(f"{HEAD}    announce_table=nowhere\n") == [
        "t.cf:3:20: error: unknown routing table 'nowhere' (not in rt_tables)"
    ]


def test_an_unknown_interface_is_an_error_at_its_value():
    assert errors(f"{HEAD}    announce_interface=vip9\n") == [
        "t.cf:3:24: error: no network interface 'vip9' here"
    ]


def test_table_and_interface_exclude_each_other():
    text = f"{HEAD}    announce_table=100\n    announce_interface=lo\n"
    assert errors(text) == [
        "t.cf:4:5: error: announce_interface and announce_table exclude each other"
    ]


def test_announce_fallback_alone_is_an_error():
    assert errors(f"{HEAD}    announce_fallback=yes\n") == [
        "t.cf:3:5: error: announce_fallback needs announce_table or announce_interface"
    ]


def test_a_firewall_mark_virtual_cannot_be_announced():
    text = "virtual=5\n    real=198.51.100.1 gate\n    announce_table=100\n"
    assert errors(text) == [
        "t.cf:3:5: error: announce needs a virtual address (a firewall mark has none)"
    ]


def test_syncd_needs_an_existing_interface():
    assert errors(f"syncd=master\n{HEAD}") == [
        "t.cf:1:1: error: syncd needs syncd_interface (the link the sync messages use)"
    ]
    assert errors(f"syncd=backup\nsyncd_interface=eth9\n{HEAD}") == [
        "t.cf:2:17: error: no network interface 'eth9' here"
    ]


def test_syncd_settings_without_syncd_are_errors():
    assert errors(f"syncd_id=3\nsyncd_interface=lo\n{HEAD}") == [
        "t.cf:1:1: error: syncd_id has no effect without syncd=",
        "t.cf:2:1: error: syncd_interface has no effect without syncd=",
    ]


def test_every_error_is_reported_at_once():
    text = (
        f"syncd=master\n{HEAD}    announce_table=nowhere\n"
        "virtual=192.0.2.11:80\n    real=198.51.100.1:80 gate\n    announce_interface=x9\n"
    )
    assert [e.split(": ", 1)[0] for e in errors(text)] == ["t.cf:1:1", "t.cf:4:20", "t.cf:7:24"]


def test_the_cluster_settings_render_back_and_dump_only_when_set():
    text = (
        "syncd=both\nsyncd_interface=eth1\nsyncd_id=9\n"
        f"{HEAD}    announce_table=anycast\n    announce_fallback=yes\n"
        "virtual=192.0.2.11:80\n    real=198.51.100.1:80 gate\n    announce_interface=lo\n"
        "virtual=192.0.2.12:80\n    real=198.51.100.1:80 gate\n"
    )
    config = parse_text(text, resolver=RESOLVER)
    assert config.syncd == Syncd(frozenset(SyncRole), "eth1", 9)
    again = parse_text(render_config(config), resolver=RESOLVER)
    assert again.syncd == config.syncd
    assert [v.announce for v in again.virtuals] == [v.announce for v in config.virtuals]
    plain = dump_model(config)
    assert plain["syncd"] == {"roles": ["master", "backup"], "interface": "eth1", "syncid": 9}
    virtuals = plain["virtuals"]
    assert isinstance(virtuals, list)
    assert virtuals[0]["announce"] == {"table": 100, "interface": None, "fallback": True}
    assert "announce" not in virtuals[2]
    assert "syncd" not in dump_model(parse_text(HEAD, resolver=RESOLVER))


def test_ldirectord_would_reject_the_cluster_directives():
    _, warnings = parse_text_with_warnings(
        f"syncd=no\n{HEAD}    announce_table=100\n", "t.cf", resolver=RESOLVER
    )
    assert {d.loc.line for d in warnings if d.ldirectord and d.loc} == {1, 4}


def test_rt_tables_reads_files_and_their_d_directory(tmp_path: Path):
    (tmp_path / "rt_tables").write_text("# comment\n255\tlocal\n100 anycast # ours\nbad line\n")
    (tmp_path / "rt_tables.d").mkdir()
    (tmp_path / "rt_tables.d" / "lb.conf").write_text("101 lb\n")
    assert rt_tables([tmp_path, tmp_path / "missing"]) == {
        "main": 254,
        "local": 255,
        "default": 253,
        "anycast": 100,
        "lb": 101,
    }


def test_the_system_resolver_knows_lo_and_main():
    resolver = SystemResolver()
    assert resolver.interface("lo") is True
    assert resolver.interface("nonexistent0") is False
    assert resolver.table("main") == 254


def test_configtest_exits_2_on_an_unknown_interface(tmp_path: Path, capsys):
    cf = tmp_path / "lb.cf"
    cf.write_text(f"{HEAD}    announce_interface=nonexistent0\n")
    assert main(["-c", str(cf), "configtest"]) == 2
    err = capsys.readouterr().err
    assert f"{cf}:3:24: error: no network interface 'nonexistent0' here" in err
