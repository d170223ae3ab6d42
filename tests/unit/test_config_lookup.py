"""ldirectord's config-file lookup, and name resolution (injected and system)."""

from __future__ import annotations

import os
from ipaddress import ip_address

import pytest

from healthd.config import ConfigNotFoundError, StaticResolver, SystemResolver, lookup, parse_text
from healthd.config.lookup import candidates


def test_candidates_order_and_default():
    assert candidates(None, ["/a", "/b"]) == [
        "ldirectord.cf",
        "/a/ldirectord.cf",
        "/b/ldirectord.cf",
    ]
    assert candidates("/etc/x.cf", ["/a"]) == ["/etc/x.cf"]


def test_lookup_prefers_the_name_given(tmp_path, monkeypatch):
    etc = tmp_path / "etc"
    (etc / "conf").mkdir(parents=True)
    (etc / "conf" / "web.cf").write_text("")
    dirs = [str(etc), str(etc / "conf")]
    assert lookup("web.cf", dirs) == str(etc / "conf" / "web.cf")
    (etc / "web.cf").write_text("")
    assert lookup("web.cf", dirs) == str(etc / "web.cf")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "web.cf").write_text("")
    assert lookup("web.cf", dirs) == str(tmp_path / "web.cf")
    assert os.path.isabs(lookup("web.cf", dirs))


def test_lookup_not_found_names_every_candidate(tmp_path):
    with pytest.raises(ConfigNotFoundError) as info:
        lookup(None, [str(tmp_path)])
    assert str(info.value) == (
        f"config file ldirectord.cf not found (tried ldirectord.cf, {tmp_path}/ldirectord.cf)"
    )


def test_lookup_ignores_directories(tmp_path):
    (tmp_path / "x.cf").mkdir()
    with pytest.raises(ConfigNotFoundError):
        lookup(str(tmp_path / "x.cf"), [])


def test_static_resolver_by_family():
    r = StaticResolver(hosts={"h": ["192.0.2.1", "2001:db8::1"]}, services={"http": 80})
    assert r.host("h", 4) == ip_address("192.0.2.1")
    assert r.host("h", 6) == ip_address("2001:db8::1")
    assert r.host("other", 4) is None
    assert (r.service("http", "tcp"), r.service("nope", "tcp")) == (80, None)


def test_system_resolver_localhost_and_services():
    r = SystemResolver()
    assert r.host("localhost", 4) == ip_address("127.0.0.1")
    assert r.service("not-a-service-name", "tcp") is None
    # /etc/services (Debian's netbase, in .ci/packages.txt)
    assert (r.service("http", "tcp"), r.service("domain", "udp")) == (80, 53)


def test_service_names_resolve_through_etc_services_in_a_config():
    cfg = parse_text("virtual=192.0.2.10:https\n    real=192.0.2.11:http masq\n", "t.cf")
    assert cfg.virtuals[0].name == "tcp/192.0.2.10:443"
    assert cfg.virtuals[0].reals[0].endpoint == "192.0.2.11:80"


def test_localhost_resolves_in_a_config():
    cfg = parse_text("virtual=localhost:8080\n    real=localhost:8081 masq\n", "t.cf")
    assert cfg.virtuals[0].name == "tcp/127.0.0.1:8080"
    assert cfg.virtuals[0].reals[0].endpoint == "127.0.0.1:8081"


async def test_load_async_runs_in_a_thread(tmp_path):
    import threading

    from healthd.config import load_async

    threads: list[int] = []

    class Recording(SystemResolver):
        def host(self, name, family):
            threads.append(threading.get_ident())
            return super().host(name, family)

    path = tmp_path / "a.cf"
    path.write_text("checkcount=2\nvirtual=localhost:80\n")
    config, warnings = await load_async(str(path), resolver=Recording(), hostname="lb1")
    assert config.virtuals[0].name == "tcp/127.0.0.1:80"
    assert [w.severity for w in warnings] == ["warning"]
    # the name lookup ran off the event loop's thread, so it cannot block the loop
    assert threads
    assert threading.get_ident() not in threads
