"""The daemon configures logging for production: cached loggers, no per-record thread lookups."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from healthd import app, logs
from healthd.model import Config


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for flag in ("logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, flag, getattr(logging, flag))
    yield
    root = logging.getLogger("healthd")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.propagate = True
    structlog.reset_defaults()


def test_the_daemon_caches_its_loggers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[dict[str, object]] = []
    monkeypatch.setattr(logs, "configure", lambda *a, **kw: seen.append(kw))
    app.configure_logs(Config(path="x.cf", logfile=str(tmp_path / "l.log")), debug=False)
    assert seen == [{"cache": True}]


def test_cached_production_logging_filters_debug_and_writes_info(tmp_path: Path) -> None:
    path = tmp_path / "healthd.log"
    logs.configure(False, str(path), cache=True)
    assert structlog.get_config()["cache_logger_on_first_use"] is True
    assert not logging.logThreads
    log = logs.get_logger("healthd.test")
    for _ in range(2):  # the second call goes through the cached logger
        log.debug(logs.CHECK_RESULT, status="up")
        log.info(logs.REAL_UP, real="127.0.0.1:80")
    text = path.read_text()
    assert text.count('"real.up"') == 2
    assert "check.result" not in text


def test_tests_keep_uncached_loggers(tmp_path: Path) -> None:
    logs.configure(False, str(tmp_path / "healthd.log"))
    assert structlog.get_config()["cache_logger_on_first_use"] is False
    assert logging.logThreads
