"""The status page's HTML and the Stats listener's figures, as pure functions."""

from __future__ import annotations

from checks.base import Result
from healthd.web import page
from healthd.web.families import escape
from healthd.web.stats import BOUNDS, Change, RealStats, Stats


def view(**real: object) -> dict[str, object]:
    row = {"real": "198.51.100.1:80", "check": "connect", "up": True, "maintenance": False,
           "failures": 0, "weight": 1, "kernel_weight": 1, "last": None, **real}  # fmt: skip
    virtual = {"virtual": "tcp/192.0.2.10:80", "in_kernel": True, "fallback_active": False}
    return {"state": "running", "config": "/etc/ha.d/<lb>.cf", "daemon": {"pid": 7},
            "virtuals": [{**virtual, "reals": [row]}]}  # fmt: skip


def test_the_page_escapes_every_value_from_the_config_and_the_checks():
    html = page.render(
        view(last={"status": "down", "reason": "x", "detail": '"><b>', "elapsed_ms": 1}), []
    )
    assert "/etc/ha.d/&lt;lb&gt;.cf" in html
    assert "&quot;&gt;&lt;b&gt;" in html
    assert '"><b>' not in html


def test_an_override_shows_instead_of_health():
    html = page.render(view(admin="drain", weight_override=3, kernel_weight=0), [])
    assert 'data-health="drain"' in html
    assert "1 / 0 (set 3)" in html


def test_a_real_not_in_the_kernel_and_not_checked_yet_says_so():
    html = page.render(view(up=False, kernel_weight=None), [])
    assert 'data-health="down"' in html
    assert "1 / absent" in html
    assert "not checked yet" in html
    assert "none since the daemon started" in html


def test_transitions_are_listed_as_given_newest_first():
    changes = [Change(2.0, "tcp/192.0.2.10:80", "198.51.100.1:80", True, "ok"),
               Change(1.0, "tcp/192.0.2.10:80", "198.51.100.1:80", False, "timeout")]  # fmt: skip
    html = page.render(view(), changes, refresh=2)
    table = html.split('id="transitions"')[1]
    assert table.index("ok") < table.index("timeout")
    assert '<meta http-equiv="refresh" content="2">' in html


def test_real_stats_count_each_result_in_its_bucket_and_reason():
    stats = RealStats()
    for elapsed, reason in ((0.0005, "ok"), (0.05, "ok"), (99.0, "timeout")):
        stats.observe(_result(reason, elapsed))
    assert stats.count == 3
    assert stats.reasons == {"ok": 2, "timeout": 1}
    assert stats.buckets[0] == 1  # ≤ 1 ms
    assert stats.buckets[BOUNDS.index(0.1)] == 1
    assert stats.buckets[-1] == 1  # +Inf
    assert abs(stats.seconds - 99.0505) < 1e-9


def _result(reason: str, elapsed: float) -> Result:
    base = Result.ok() if reason == "ok" else Result.down(reason)
    return Result(base.status, base.reason, base.detail, elapsed)


def test_the_sampler_takes_the_rate_and_the_largest_lag_over_its_window():
    stats = Stats()
    stats.sample(0.002, 100.0, 0)
    stats.sample(0.030, 101.0, 500)
    stats.sample(0.001, 102.0, 1000)
    assert stats.achieved == 500.0
    assert stats.lag == 0.030


def test_label_values_are_escaped_for_the_text_format():
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
