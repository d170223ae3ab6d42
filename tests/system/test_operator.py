"""The operator's view end to end: a real `healthd` process with `http_listen=`, scraped by a
real Prometheus server, its metrics checked by `promtool`, its status page rendered by
headless Chromium, and `healthd ctl` changing a real at runtime and across a restart.

HEALTHD_DRIVER=fake stands in for the kernel; the HTTP checks reach real backends on
loopback. Prometheus and Chromium are Debian packages (.ci/packages.txt); every wait is
bounded.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system._support import Backend, healthd, wait_for

pytestmark = pytest.mark.slow

WAIT = 30.0  # seconds for Prometheus or Chromium to see a change (a loaded CI machine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return str(response.read().decode())


class Daemon:
    """One `healthd start` on a config with two HTTP reals and http_listen on loopback."""

    def __init__(self, env: dict[str, str], tmp: Path, backends: list[Backend]) -> None:
        self.env, self.port = env, free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.endpoints = [f"127.0.0.1:{b.port}" for b in backends]
        self.path = tmp / "lb.cf"
        self.path.write_text(
            "checkinterval=1\n"
            f"http_listen=127.0.0.1:{self.port}\n"
            f"state_file={tmp / 'state.json'}\n"
            "quiescent=yes\n\n"
            "virtual=192.0.2.10:80\n"
            + "".join(f"    real={r} masq\n" for r in self.endpoints)
            + '    service=http\n    request="/"\n    receive="ok"\n    checktimeout=2\n'
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return healthd(self.env, "-c", str(self.path), *args)

    def status(self) -> dict:
        return json.loads(self.run("status", "--format", "json").stdout)

    def reals(self) -> dict[str, dict]:
        return {r["real"]: r for r in self.status()["virtuals"][0]["reals"]}


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    made = [Backend(), Backend()]
    yield made
    for b in made:
        b.close()


@pytest.fixture
def daemon(env, tmp_path, backends) -> Iterator[Daemon]:
    d = Daemon(env, tmp_path, backends)
    started = d.run("start")
    assert started.returncode == 0, started.stderr
    wait_for(lambda: all(r["up"] for r in d.reals().values()))
    yield d
    d.run("stop")


def need(tool: str) -> str:
    path = shutil.which(tool)
    assert path is not None, f"{tool} is missing: scripts/bootstrap installs .ci/packages.txt"
    return path


def test_promtool_accepts_the_metrics(daemon):
    text = get(daemon.url + "metrics")
    assert "healthd_real_up{" in text
    done = subprocess.run([need("promtool"), "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def _query(base: str, expr: str) -> list[dict]:
    url = f"{base}api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        body = json.loads(get(url))
    except OSError:
        return []  # Prometheus not listening yet
    return list(body["data"]["result"]) if body.get("status") == "success" else []


@pytest.fixture
def prometheus(tmp_path, daemon) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: healthd\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{daemon.port}']\n"
    )
    argv = [
        need("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with open(tmp_path / "prometheus.log", "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_prometheus_server_scrapes_healthd_and_sees_a_real_fail(daemon, prometheus, backends):
    down = daemon.endpoints[1]
    up = wait_for(lambda: _query(prometheus, "healthd_real_up == 1"), WAIT)
    assert {r["metric"]["real"] for r in up} == set(daemon.endpoints)
    assert {r["metric"]["job"] for r in up} == {"healthd"}
    backends[1].failing = True
    gone = wait_for(lambda: _query(prometheus, f'healthd_real_up{{real="{down}"}} == 0'), WAIT)
    assert gone[0]["metric"]["virtual"] == "tcp/192.0.2.10:80"
    moved = _query(prometheus, f'healthd_real_transitions_total{{real="{down}",to="down"}}')
    assert moved
    assert float(moved[0]["value"][1]) >= 1


def _dom(url: str, tmp: Path) -> str:
    argv = [need("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
            f"--user-data-dir={tmp / 'chromium'}", "--dump-dom", url]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_status_page_in_chromium_shows_a_real_go_down_and_come_back(daemon, backends, tmp_path):
    real = daemon.endpoints[0]
    first = _dom(daemon.url, tmp_path)
    assert f'data-real="{real}" data-health="up"' in first
    assert "tcp/192.0.2.10:80" in first
    assert '<meta http-equiv="refresh" content="5">' in first
    backends[0].failing = True
    wait_for(lambda: not daemon.reals()[real]["up"])
    failed = _dom(daemon.url, tmp_path)
    assert f'data-real="{real}" data-health="down"' in failed
    assert "receive_mismatch" in failed or "status_mismatch" in failed
    backends[0].failing = False
    wait_for(lambda: daemon.reals()[real]["up"])
    back = _dom(daemon.url, tmp_path)
    assert f'data-real="{real}" data-health="up"' in back
    transitions = back.split('id="transitions"')[1]
    assert transitions.index(">up<") < transitions.index(">down<")  # newest first
    shot = tmp_path / "page.png"
    argv = [need("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
            f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={shot}",
            "--window-size=1200,800", daemon.url]  # fmt: skip
    subprocess.run(argv, capture_output=True, timeout=90, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5000


def test_ctl_changes_a_real_and_the_change_survives_a_restart(daemon):
    real = daemon.endpoints[1]
    done = daemon.run("ctl", "weight", "192.0.2.10:80", real, "7")
    assert (done.returncode, done.stdout) == (0, f"weight tcp/192.0.2.10:80 {real}: weight 7\n")
    wait_for(lambda: daemon.reals()[real]["kernel_weight"] == 7)
    done = daemon.run("ctl", "drain", "192.0.2.10:80", real)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: daemon.reals()[real]["kernel_weight"] is None)  # no connections: removed
    assert daemon.reals()[real]["admin"] == "drained"
    labels = f'virtual="tcp/192.0.2.10:80",real="{real}",state="drained"'
    assert f"healthd_real_admin_state{{{labels}}} 1" in get(daemon.url + "metrics")
    assert daemon.run("stop").returncode == 0
    assert daemon.run("start").returncode == 0
    wait_for(lambda: daemon.reals()[daemon.endpoints[0]]["up"])
    assert daemon.reals()[real]["admin"] == "drained"
    assert daemon.reals()[real]["kernel_weight"] is None
    assert daemon.run("ctl", "ready", "192.0.2.10:80", real).returncode == 0
    wait_for(lambda: daemon.reals()[real]["kernel_weight"] == 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("drain", "192.0.2.99:80", "127.0.0.1"),
            "healthd: no virtual service matches '192.0.2.99:80'\n",
        ),
        (
            ("maint", "192.0.2.10:80", "127.0.0.9:1"),
            "healthd: no real server matches '127.0.0.9:1'\n",
        ),
        (
            ("weight", "192.0.2.10:80", "REAL", "65536"),
            "healthd: weight 65536 out of range (expected 0 to 65535)\n",
        ),
    ],
)
def test_ctl_refuses_bad_input_with_one_line_and_changes_nothing(daemon, args, message):
    args = tuple(daemon.endpoints[0] if a == "REAL" else a for a in args)
    before = daemon.reals()
    done = daemon.run("ctl", *args)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", message)
    after = daemon.reals()
    assert [(r["kernel_weight"], r["admin"]) for r in after.values()] == [
        (r["kernel_weight"], r["admin"]) for r in before.values()
    ]


def test_ctl_without_a_daemon_says_so(env, tmp_path, backends):
    d = Daemon(env, tmp_path, backends)
    done = d.run("ctl", "drain", "192.0.2.10:80", d.endpoints[0])
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "is the daemon for" in done.stderr


def errors(stderr: str) -> list[str]:
    """Return stderr without the warnings about healthd's own directives (and their context)."""
    lines = stderr.splitlines()
    warned = {i + k for i, line in enumerate(lines) if ": warning: " in line for k in (0, 1, 2)}
    assert all("healthd's own directive" in lines[i] for i in warned if ": warning: " in lines[i])
    return [line for i, line in enumerate(lines) if i not in warned]


def test_a_listen_address_in_use_stops_the_start_with_one_line(env, tmp_path, backends):
    d = Daemon(env, tmp_path, backends)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", d.port))
        taken.listen()
        done = d.run("start")
    assert done.returncode == 1
    assert errors(done.stderr) == [
        f"healthd: cannot listen on 127.0.0.1:{d.port} (http_listen): address already in use"
    ]
    assert d.run("status").returncode == 3  # not running


def test_a_listen_address_not_on_this_host_stops_the_start_with_one_line(env, tmp_path, backends):
    d = Daemon(env, tmp_path, backends)
    d.path.write_text(d.path.read_text().replace(f"127.0.0.1:{d.port}", "192.0.2.1:9188", 1))
    done = d.run("start")
    assert done.returncode == 1
    assert errors(done.stderr) == [
        "healthd: cannot listen on 192.0.2.1:9188 (http_listen): the address is not on this host"
    ]


def test_the_page_and_metrics_answer_on_ipv6_loopback(env, tmp_path, backends):
    d = Daemon(env, tmp_path, backends)
    d.path.write_text(d.path.read_text().replace(f"127.0.0.1:{d.port}", f"[::1]:{d.port}", 1))
    assert d.run("start").returncode == 0
    try:
        text = wait_for(lambda: _get_or_empty(f"http://[::1]:{d.port}/metrics"))
        assert "healthd_virtual_reals{" in str(text)
    finally:
        d.run("stop")


def _get_or_empty(url: str) -> str:
    try:
        return get(url)
    except OSError:
        return ""
