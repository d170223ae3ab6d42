"""sd_notify over a real unix datagram socket, path and abstract namespace."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from healthd.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(1.0)
    yield s, path
    s.close()


def _recv(s: socket.socket) -> dict[str, str]:
    data = s.recv(4096).decode()
    assert data.endswith("\n")
    return dict(line.split("=", 1) for line in data.splitlines())


def test_ready_with_status(listener):
    s, path = listener
    n = Notifier(path)
    assert n.ready(status="running: 2 virtual services")
    assert _recv(s) == {"READY": "1", "STATUS": "running: 2 virtual services"}
    n.close()


def test_reloading_carries_monotonic_usec(listener):
    s, path = listener
    n = Notifier(path)
    assert n.reloading()
    msg = _recv(s)
    assert msg["RELOADING"] == "1"
    assert int(msg["MONOTONIC_USEC"]) > 0
    n.close()


def test_stopping_and_watchdog(listener):
    s, path = listener
    n = Notifier(path)
    n.stopping()
    n.watchdog()
    assert _recv(s) == {"STOPPING": "1"}
    assert _recv(s) == {"WATCHDOG": "1"}
    n.close()


def test_abstract_namespace():
    name = f"healthd-test-{os.getpid()}-{id(object())}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(b"\0" + name.encode())
    s.settimeout(1.0)
    try:
        n = Notifier("@" + name)
        assert n.status("hello")
        assert _recv(s) == {"STATUS": "hello"}
        n.close()
    finally:
        s.close()


def test_without_socket_is_a_noop():
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.ready() is False
    assert n.watchdog_interval is None


def test_missing_socket_does_not_raise(tmp_path):
    n = Notifier(str(tmp_path / "absent"))
    assert n.ready() is False
    n.close()


def test_watchdog_interval_is_half_of_watchdog_usec():
    n = Notifier.from_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000"})
    assert n.watchdog_interval == 2.0


def test_watchdog_for_another_pid_is_ignored():
    env = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}
    assert Notifier.from_env(env).watchdog_interval is None
    env["WATCHDOG_PID"] = str(os.getpid())
    assert Notifier.from_env(env).watchdog_interval == 2.0


def test_a_reader_that_lags_never_blocks_the_sender_for_good(listener, monkeypatch):
    # a datagram socket queues only a few messages; beyond that sendto would wait for ever
    from healthd import sdnotify

    monkeypatch.setattr(sdnotify, "SEND_TIMEOUT", 0.05)
    s, path = listener
    n = Notifier(path)
    sent = []
    while len(sent) < 2000 and (not sent or sent[-1]):
        sent.append(n.watchdog())
    assert sent[0] is True
    assert sent[-1] is False  # dropped after SEND_TIMEOUT (and logged), not stuck
    assert _recv(s) == {"WATCHDOG": "1"}  # what was queued is still delivered
    n.close()
