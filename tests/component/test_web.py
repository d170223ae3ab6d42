"""The operator's server on a real Engine: metrics values, the status page and the JSON API.

The Engine runs on virtual time with scripted checks; the server's aiohttp application is
driven by aiohttp's test client; the metrics text is read back with prometheus_client's
own parser (promtool and a Prometheus server read it in tests/system/test_operator.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address

import pytest
from prometheus_client.parser import text_string_to_metric_families

from checks.base import Result
from healthd.ipvs.counting import CountingDriver
from healthd.ipvs.types import Counters, DestKey, Protocol, ServiceKey
from healthd.overrides import Mode, Override
from healthd.web.metrics import Metrics
from healthd.web.server import WebServer
from healthd.web.stats import Stats
from tests.component.support import Harness, config, real, virtual

SVC = "tcp/192.0.2.10:80"
KEY = ServiceKey(Protocol.TCP, ip_address("192.0.2.10"), 80)
R1, R2 = "198.51.100.1", "198.51.100.2"


@dataclass
class Facts:
    reloads: int = 2
    reload_failures: int = 1
    loaded_at: float = 1700000000.0


@pytest.fixture
async def served(harnesses):
    stats = Stats()
    h = Harness(config(virtual(real(R1), real(R2, weight=3), quiescent=True)), listeners=[stats])
    counting = CountingDriver(h.driver)
    h.engine.kernel.driver = counting
    harnesses.append(h)
    h.script.set(R2, True, Result.down("status_mismatch", "got <b>500</b> & <script>x</script>"))
    await h.start()
    metrics = Metrics(h.engine, stats, counting, Facts())
    server = WebServer(lambda: {**h.engine.snapshot(), "daemon": {"pid": 42}}, stats, metrics)
    return h, counting, metrics, server


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[s.name, tuple(sorted(s.labels.items()))] = s.value
    return found


def real_labels(r: str, **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"virtual": SVC, "real": f"{r}:80", **more}.items()))


async def test_metrics_follow_health_weights_results_and_transitions(served):
    h, counting, metrics, _ = served
    await h.clock.advance(10)  # R2's check fails: down, quiesced
    h.driver.set_counters(KEY, DestKey(ip_address(R1), 80), Counters(3, 1, 0, 40, 50, 60, 700, 800))
    await counting.dump()
    got = samples(metrics.render().decode())
    assert got["healthd_real_up", real_labels(R1)] == 1
    assert got["healthd_real_up", real_labels(R2)] == 0
    assert got["healthd_real_weight", real_labels(R2)] == 0
    assert got["healthd_real_weight", real_labels(R1)] == 1
    assert got["healthd_real_consecutive_failures", real_labels(R2)] == 1
    assert got["healthd_check_results_total", real_labels(R2, reason="ok")] == 1
    assert got["healthd_check_results_total", real_labels(R2, reason="status_mismatch")] == 1
    assert got["healthd_real_transitions_total", real_labels(R2, to="down")] == 1
    assert got["healthd_check_duration_seconds_count", real_labels(R1)] == 2
    assert got["healthd_check_duration_seconds_bucket", real_labels(R1, le="+Inf")] == 2
    assert got["healthd_real_active_connections", real_labels(R1)] == 3
    assert got["healthd_virtual_reals_up", (("virtual", SVC),)] == 1
    assert got["healthd_virtual_fallback_active", (("virtual", SVC),)] == 0
    assert got["healthd_ipvs_connections_total", (("virtual", SVC),)] == 40
    assert got["healthd_ipvs_bytes_total", (("direction", "out"), ("virtual", SVC))] == 800
    assert got["healthd_reloads_total", (("result", "failed"),)] == 1
    assert got["healthd_ipvs_ops_total", (("op", "edit_dest"),)] == 3  # two up, one down
    assert got["healthd_real_transitions_total", real_labels(R1, to="up")] == 1
    assert got["healthd_checks_total", ()] == 4
    assert got["healthd_checks_configured_per_second", ()] == pytest.approx(0.2)


async def test_metrics_show_an_override(served):
    h, _, metrics, _ = served
    h.engine.overrides.put(Override(SVC, f"{R1}:80", Mode.DRAIN))
    got = samples(metrics.render().decode())
    assert got["healthd_real_admin_state", real_labels(R1, state="drain")] == 1
    assert got["healthd_virtual_reals_up", (("virtual", SVC),)] == 1  # R1 draining: only R2
    assert got["healthd_overrides", ()] == 1


async def test_the_page_shows_each_real_escaped_and_refreshes(served, aiohttp_client):
    h, _, _, server = served
    client = await aiohttp_client(server.app())
    await h.clock.advance(10)
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    text = await response.text()
    assert '<meta http-equiv="refresh" content="5">' in text
    assert f'data-real="{R2}:80" data-health="down"' in text
    assert f'data-real="{R1}:80" data-health="up"' in text
    assert "got &lt;b&gt;500&lt;/b&gt; &amp; &lt;script&gt;x&lt;/script&gt;" in text
    assert "<script>" not in text
    assert "status_mismatch" in text.split('id="transitions"')[1]


async def test_the_api_mirrors_the_status_view_and_writes_nothing(served, aiohttp_client):
    h, _, _, server = served
    client = await aiohttp_client(server.app())
    status = await (await client.get("/api/v1/status")).json()
    assert (status["status"], status["pid"], status["state"]) == ("running", 42, "running")
    assert [r["real"] for r in status["virtuals"][0]["reals"]] == [f"{R1}:80", f"{R2}:80"]
    virtuals = await (await client.get("/api/v1/virtuals")).json()
    assert virtuals == status["virtuals"]
    await h.clock.advance(10)
    moves = await (await client.get("/api/v1/transitions")).json()
    assert [(m["real"], m["up"], m["reason"]) for m in moves] == [  # newest first
        (f"{R2}:80", False, "status_mismatch"),
        (f"{R2}:80", True, "ok"),
        (f"{R1}:80", True, "ok"),
    ]
    for path in ("/", "/metrics", "/api/v1/status"):
        assert (await client.post(path)).status == 405


async def test_metrics_are_served_with_the_text_format_type(served, aiohttp_client):
    _, _, _, server = served
    client = await aiohttp_client(server.app())
    response = await client.get("/metrics")
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "healthd_real_up{" in await response.text()


async def test_every_sample_follows_its_own_family_s_type_line(served):
    # the text format wants each family's samples together, after its TYPE line
    h, counting, metrics, _ = served
    await h.clock.advance(10)
    await counting.dump()
    family = None
    for line in metrics.render().decode().splitlines():
        if line.startswith("# TYPE "):
            family = line.split()[2]
        elif not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
            assert family in (name, base, base.removesuffix("_total")), line
