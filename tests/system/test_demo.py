"""`healthd demo` end to end: the failure and the recovery appear in its output."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from ipaddress import ip_address

import pytest

from healthd.demo.table import render
from healthd.ipvs.types import (
    Dest,
    DestKey,
    Method,
    Protocol,
    Service,
    ServiceEntry,
    ServiceKey,
    Table,
)


def test_render_like_ipvsadm():
    key = ServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 8080)
    dests = [
        Dest(DestKey(ip_address("127.0.0.2"), 41234), 1, Method.MASQ),
        Dest(DestKey(ip_address("127.0.0.3"), 80), 0, Method.ROUTE),
    ]
    table = Table({key: ServiceEntry(Service(key), {d.key: d for d in dests})})
    assert render(table).splitlines() == [
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        "TCP  127.0.0.100:8080 wrr",
        "  -> 127.0.0.2:41234              Masq    1      0          0",
        "  -> 127.0.0.3:80                 Route   0      0          0",
    ]


def test_a_real_server_that_cannot_bind_is_one_line_and_exit_1():
    # 192.0.2.1 is on no interface here: bind fails (EADDRNOTAVAIL), nothing is sent; a
    # subprocess, so the demo's logging set-up stays out of this test process
    code = (
        "import sys; from healthd.demo import scenario; "
        "scenario.ADDRESSES = ['127.0.0.2', '192.0.2.1']; from healthd import cli; "
        "sys.exit(cli.main(['demo', '--fake', '--duration', '1']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (
        "healthd demo: cannot start the demo's real server on 192.0.2.1: "
        "Cannot assign requested address\n"
    )
    assert "real servers:" not in proc.stdout  # it stopped before the story began


def test_render_names_each_protocol_and_brackets_ipv6():
    keys = [
        ServiceKey(Protocol.SCTP, ip_address("127.0.0.100"), 8080),
        ServiceKey(Protocol.UDP, ip_address("2001:db8::1"), 53),
        ServiceKey(Protocol.FWM, None, 0, fwmark=7),
    ]
    table = Table({k: ServiceEntry(Service(k), {}) for k in keys})
    assert render(table).splitlines()[2:] == [
        "SCTP 127.0.0.100:8080 wrr",
        "UDP  [2001:db8::1]:53 wrr",
        "FWM  7 wrr",
    ]


@pytest.mark.slow
def test_demo_shows_failure_and_recovery():
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    proc = subprocess.run(
        [sys.executable, "-m", "healthd", "demo", "--fake", "--duration", "40", "--http", "0"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "using the in-memory IPVS table (--fake)" in proc.stdout
    page = re.search(r"status page: (http://127\.0\.0\.1:\d+/) \(metrics: \1metrics", proc.stdout)
    assert page is not None, proc.stdout
    victim = re.search(r"making (127\.0\.0\.3:\d+) fail", proc.stdout)
    assert victim is not None, proc.stdout
    real = victim.group(1)
    # the transition log lines (stderr), in order: down (removed), then up (restored)
    log = proc.stderr
    down = re.search(rf"real\.down .*real={re.escape(real)} .*reason=status_mismatch.*", log)
    assert down is not None, log
    assert "action=remove" in down.group(0)
    assert re.search(rf"real\.up .*real={re.escape(real)}", log[down.end() :]) is not None
    # the table printed without, then with the victim again
    tables = proc.stdout.split("IPVS table changed:")[1:]
    with_victim = [real in t.split("\n[")[0] for t in tables]
    first_gone = with_victim.index(False, with_victim.index(True))
    assert True in with_victim[first_gone:]
    assert f"{real} was taken out of the table" in proc.stdout
    assert f"{real} is back in the table" in proc.stdout
    assert proc.stdout.rstrip().endswith("demo finished")


@pytest.mark.slow
def test_demo_until_interrupted_stops_on_ctrl_c():
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "healthd", "demo", "--fake", "--duration", "0", "--http", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "running until interrupted" in line:
                break
        page = re.search(r"status page: (\S+) ", "".join(seen))
        assert page is not None, seen
        # while it runs, the page shows the demo's reals, all three up again
        with urllib.request.urlopen(page.group(1), timeout=10) as response:
            html = response.read().decode()
        assert html.count('data-health="up"') == 3
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()
        assert proc.wait(timeout=30) == 0
        assert rest.rstrip().endswith("demo finished")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
