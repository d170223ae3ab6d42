"""The sync daemon: its netlink messages, the plan, the plugin on the in-memory driver, and
its state in the status view, the status text and the metrics.

The messages against the real kernel (and ipvsadm as a witness) are in
tests/kernel/test_cluster.py.
"""

from __future__ import annotations

import errno
import struct

from structlog.testing import capture_logs

from healthd.commands.status import cluster_lines
from healthd.config import StaticResolver, parse_text
from healthd.ipvs import _wire as w
from healthd.ipvs import syncd_wire
from healthd.ipvs.fake import FakeDriver
from healthd.ipvs.syncd_wire import SyncDaemon
from healthd.model import Config
from healthd.syncd import SyncdControl, plan, wanted
from healthd.web.cluster import cluster_families

RESOLVER = StaticResolver(interfaces=frozenset({"lo", "eth1", "eth2"}))
REAL = "virtual=192.0.2.10:80\n    real=198.51.100.1:80 gate\n"
MASTER = SyncDaemon("master", "eth1", 9)
BACKUP = SyncDaemon("backup", "eth1", 9)


def config(head: str) -> Config:
    return parse_text(head + REAL, "t.cf", resolver=RESOLVER)


BOTH = config("syncd=both\nsyncd_interface=eth1\nsyncd_id=9\n")


def test_start_encodes_state_interface_and_syncid_under_the_daemon_attribute():
    cmd, payload = syncd_wire.start(MASTER)
    assert cmd == syncd_wire.CMD_NEW_DAEMON
    outer = w.attrs(payload)
    nested = w.attrs(outer[syncd_wire.ATTR_DAEMON])
    assert struct.unpack("=I", nested[syncd_wire.DAEMON_STATE]) == (1,)
    assert nested[syncd_wire.DAEMON_MCAST_IFN] == b"eth1\0"
    assert struct.unpack("=I", nested[syncd_wire.DAEMON_SYNC_ID]) == (9,)
    cmd, payload = syncd_wire.stop("backup")
    assert cmd == syncd_wire.CMD_DEL_DAEMON
    nested = w.attrs(w.attrs(payload)[syncd_wire.ATTR_DAEMON])
    assert nested == {syncd_wire.DAEMON_STATE: struct.pack("=I", 2)}


def test_a_get_daemon_reply_decodes_back():
    _, payload = syncd_wire.start(BACKUP)
    body = struct.pack("=BBH", syncd_wire.CMD_NEW_DAEMON, 1, 0) + payload
    assert syncd_wire.decode(body) == BACKUP
    assert syncd_wire.decode(struct.pack("=BBH", 11, 1, 0)) is None  # no daemon attribute


def test_the_plan_starts_stops_and_restarts_on_a_changed_link():
    want = wanted(BOTH.syncd)
    assert want == [BACKUP, MASTER]
    assert plan(want, []) == ([], [BACKUP, MASTER])
    assert plan(want, [BACKUP, MASTER]) == ([], [])
    moved = SyncDaemon("master", "eth2", 9)
    assert plan(want, [BACKUP, moved]) == (["master"], [MASTER])
    assert plan(wanted(config("syncd=no\n").syncd), [MASTER]) == (["master"], [])
    assert plan(wanted(None), [MASTER]) == ([], [])  # without syncd=: left alone


async def test_the_plugin_starts_what_is_configured_and_stops_it_on_exit():
    driver = FakeDriver()
    plugin = SyncdControl(BOTH, driver)
    with capture_logs() as logs:
        await plugin.start()
    assert sorted(driver.syncd.values()) == [BACKUP, MASTER]
    assert [e["event"] for e in logs] == ["syncd.started", "syncd.started"]
    assert plugin.state() == {"master": True, "backup": True}
    del driver.syncd["backup"]  # stopped by hand: the next sync starts it again
    await plugin.sync()
    assert "backup" in driver.syncd
    await plugin.aclose()
    assert driver.syncd == {}


async def test_a_reload_to_master_only_stops_the_backup():
    driver = FakeDriver()
    plugin = SyncdControl(BOTH, driver)
    await plugin.start()
    plugin.reconfigure(config("syncd=master\nsyncd_interface=eth1\nsyncd_id=9\n"))
    await plugin.sync()
    assert list(driver.syncd.values()) == [MASTER]


async def test_a_refusal_is_logged_kept_for_status_and_retried():
    driver = FakeDriver()
    driver.fail_next(errno.EPERM)
    plugin = SyncdControl(BOTH, driver)
    with capture_logs() as logs:
        await plugin.start()
    assert [(e["event"], e["errno"]) for e in logs] == [("syncd.apply_failed", errno.EPERM)]
    assert plugin.error is not None
    view = plugin.view()["syncd"]
    assert isinstance(view, dict)
    assert view["error"] == plugin.error
    await plugin.sync()
    assert plugin.error is None
    assert len(driver.syncd) == 2


async def test_without_syncd_nothing_is_touched_or_shown():
    driver = FakeDriver()
    driver.syncd["master"] = MASTER  # started by someone else
    plugin = SyncdControl(config(""), driver)
    await plugin.start()
    await plugin.aclose()
    assert driver.syncd == {"master": MASTER}
    assert plugin.view() == {}
    assert list(cluster_families([plugin])) == []


async def test_status_text_and_metrics_show_the_daemons():
    driver = FakeDriver()
    plugin = SyncdControl(BOTH, driver)
    await plugin.start()
    assert cluster_lines(dict(plugin.view())) == [
        "sync daemon: backup on eth1 (syncid 9), master on eth1 (syncid 9)"
    ]
    samples = {
        (s.name, s.labels["role"]): s.value for f in cluster_families([plugin]) for s in f.samples
    }
    assert samples == {
        ("healthd_syncd_state", "master"): 1,
        ("healthd_syncd_state", "backup"): 1,
        ("healthd_syncd_configured", "master"): 1,
        ("healthd_syncd_configured", "backup"): 1,
    }


def test_status_text_shows_routes():
    view: dict[str, object] = {
        "routes": [
            {"route": "route 192.0.2.10/32 table 100", "announced": True, "error": False},
            {"route": "address 192.0.2.11/32 dev lo", "announced": False, "error": True},
        ]
    }
    assert cluster_lines(view) == [
        "route 192.0.2.10/32 table 100: announced",
        "address 192.0.2.11/32 dev lo: withdrawn (kernel refuses the change)",
    ]


async def test_a_reload_takes_effect_when_the_engine_runs_again():
    driver = FakeDriver()
    plugin = SyncdControl(BOTH, driver)
    await plugin.start()
    plugin.reconfigure(config("syncd=no\n"))
    assert len(driver.syncd) == 2  # not yet: the engine is still reloading
    await plugin.on_state("running")
    assert driver.syncd == {}
