"""The state file: atomic writes, round trips, and one clear line for a broken file."""

from __future__ import annotations

import os

import pytest

from healthd import statefile
from healthd.model import Config
from healthd.overrides import Mode, Override

NAME = "tcp/192.0.2.10:80"


def test_overrides_round_trip_through_the_file(tmp_path):
    path = str(tmp_path / "lb.state.json")
    saved = [Override(NAME, "198.51.100.1:80", Mode.DRAIN, None, 10.0, 310.0),
             Override(NAME, "198.51.100.2:80", None, 4, 11.0)]  # fmt: skip
    statefile.save(path, saved)
    assert statefile.load(path) == saved
    assert [p.name for p in tmp_path.iterdir()] == ["lb.state.json"]  # no temporary left


def test_a_missing_file_holds_no_overrides(tmp_path):
    assert statefile.load(str(tmp_path / "none.json")) == []


def test_save_makes_the_directory(tmp_path):
    path = str(tmp_path / "var" / "lib" / "healthd" / "s.json")
    statefile.save(path, [Override(NAME, "198.51.100.1:80", Mode.MAINT)])
    assert statefile.load(path)[0].mode is Mode.MAINT


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "is not JSON"),
        ('{"version": 2, "overrides": []}', "expected version 1"),
        ('{"version": 1, "overrides": {}}', "'overrides' must be a list"),
        ('{"version": 1, "overrides": [{"virtual": "x"}]}', "needs a virtual and a real"),
    ],
)
def test_a_broken_file_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(statefile.StateFileError, match=message) as info:
        statefile.load(str(path))
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "s.json"
    statefile.save(str(path), [Override(NAME, "198.51.100.1:80", Mode.MAINT)])

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(statefile.StateFileError, match="No space left on device"):
        statefile.save(str(path), [])
    monkeypatch.undo()
    assert len(statefile.load(str(path))) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_a_failed_write_into_a_file_path_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(statefile.StateFileError, match="cannot write state file"):
        statefile.save(str(blocker / "s.json"), [])


def test_the_default_path_is_named_after_the_config(monkeypatch, tmp_path):
    monkeypatch.setenv(statefile.STATEDIR_ENV, str(tmp_path))
    assert statefile.path_for(Config("/etc/ha.d/web.cf")) == str(tmp_path / "web.cf.state.json")
    monkeypatch.delenv(statefile.STATEDIR_ENV)
    assert statefile.path_for(Config("/etc/ha.d/web.cf")) == "/var/lib/healthd/web.cf.state.json"
    assert statefile.path_for(Config("x.cf", state_file="/srv/s.json")) == "/srv/s.json"
