"""`status` with execute= instances, against real processes holding ldirectord's pid files.

The marked processes answer no control socket, so status falls back to the execute= lines of
the parent's file; tests/system/test_status_instances.py runs real daemons instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthd import cli, pidfile
from tests.unit._procs import dead_pid, spawn_marked

VIRTUAL = "virtual=192.0.2.10:80\n\treal=192.0.2.11:80 gate\n"


@pytest.fixture
def tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(pidfile.PIDDIR_ENV, str(tmp_path))
    monkeypatch.setenv("HEALTHD_RUNDIR", str(tmp_path / "run"))
    return tmp_path


@pytest.fixture
def procs() -> Iterator[list]:
    started: list = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def config(tmp: Path, name: str, *execute: str) -> Path:
    path = tmp / name
    path.write_text("".join(f"execute={e}\n" for e in execute) + VIRTUAL)
    return path


def run(tmp: Path, name: str, procs: list) -> int:
    """Start a marked process and give it `name`'s pid file, as a running instance has."""
    proc = spawn_marked()
    procs.append(proc)
    (tmp / f"ldirectord.{name}.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def test_every_instance_running_is_0(tmp, procs, capsys):
    a, b = config(tmp, "a.cf"), config(tmp, "b.cf")
    parent = config(tmp, "web.cf", str(a), str(b))
    pids = [run(tmp, n, procs) for n in ("web.cf", "a.cf", "b.cf")]
    assert cli.main([str(parent), "status"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"ldirectord for {parent} is running with pid: {pids[0]}",
        f"ldirectord for {a} is running with pid: {pids[1]}",
        f"ldirectord for {b} is running with pid: {pids[2]}",
    ]


def test_a_stopped_instance_gives_its_lines_and_the_parents_0(tmp, procs, capsys):
    a, b = config(tmp, "a.cf"), config(tmp, "b.cf")
    parent = config(tmp, "web.cf", str(a), str(b))
    run(tmp, "web.cf", procs)
    run(tmp, "b.cf", procs)
    # ldirectord: the code is the parent's (Pacemaker's monitor reads it)
    assert cli.main([str(parent), "status"]) == 0
    out, err = capsys.readouterr()
    assert out == f"ldirectord is stopped for {a}\n"
    assert f"ldirectord for {b} is running with pid:" in err  # the others are still asked


def test_a_stale_instance_has_ldirectords_two_lines(tmp, procs, capsys):
    a = config(tmp, "a.cf")
    parent = config(tmp, "web.cf", str(a))
    run(tmp, "web.cf", procs)
    (tmp / "ldirectord.a.cf.pid").write_text(f"{dead_pid()}\n")
    assert cli.main([str(parent), "status"]) == 0
    out, err = capsys.readouterr()
    assert out == f"ldirectord is stopped for {a}\n"
    assert err.endswith(f"ldirectord stale pid file {tmp / 'ldirectord.a.cf.pid'} for {a}\n")


def test_an_instance_whose_file_is_missing_is_one_line(tmp, procs, capsys):
    parent = config(tmp, "web.cf", str(tmp / "gone.cf"))
    run(tmp, "web.cf", procs)
    assert cli.main([str(parent), "status"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("healthd: config file ")
    assert "gone.cf not found" in err


def test_a_stopped_parent_asks_no_instance(tmp, procs, capsys):
    # ldirectord: the children of a daemon that is not running are not queried
    a = config(tmp, "a.cf")
    parent = config(tmp, "web.cf", str(a))
    run(tmp, "a.cf", procs)
    assert cli.main([str(parent), "status"]) == 3
    assert capsys.readouterr() == (f"ldirectord is stopped for {parent}\n", "")


def test_nested_instances_and_loops_are_asked_once(tmp, procs, capsys):
    # web -> a -> (b, web): ldirectord would recurse for ever; each config is reported once
    b = config(tmp, "b.cf")
    a = tmp / "a.cf"
    parent = config(tmp, "web.cf", str(a))
    a.write_text(f"execute={b}\nexecute={parent}\n" + VIRTUAL)
    for name in ("web.cf", "a.cf"):
        run(tmp, name, procs)
    assert cli.main([str(parent), "status"]) == 0
    out, err = capsys.readouterr()
    assert out == f"ldirectord is stopped for {b}\n"
    assert err.count(f"ldirectord for {parent} is running") == 1
    assert err.count(f"ldirectord for {a} is running") == 1


def test_a_broken_parent_file_still_lists_its_instances(tmp, procs, capsys):
    # only the execute= lines are read: an error elsewhere in the file changes nothing
    a = config(tmp, "a.cf")
    parent = tmp / "web.cf"
    parent.write_text(f"execute={a}\nvirtual=192.0.2.10:80\n\treal=192.0.2.11:80 gatee\n")
    run(tmp, "web.cf", procs)
    assert cli.main([str(parent), "status"]) == 0
    assert capsys.readouterr().out == f"ldirectord is stopped for {a}\n"


def test_json_nests_each_instance_and_keeps_stdout_parseable(tmp, procs, capsys):
    a, b = config(tmp, "a.cf"), config(tmp, "b.cf")
    parent = config(tmp, "web.cf", str(a), str(b))
    pid = run(tmp, "web.cf", procs)
    a_pid = run(tmp, "a.cf", procs)
    assert cli.main([str(parent), "status", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    view = json.loads(out)
    assert (view["config"], view["status"], view["pid"]) == (str(parent), "running", pid)
    assert [(i["config"], i["status"], i["pid"]) for i in view["instances"]] == [
        (str(a), "running", a_pid),
        (str(b), "stopped", None),
    ]
    assert view["instances"][1] == {"config": str(b), "status": "stopped", "pid": None}
    assert err.splitlines()[-1] == f"ldirectord is stopped for {b}"


def test_yaml_lists_a_missing_instance(tmp, procs, capsys):
    import yaml

    parent = config(tmp, "web.cf", "nowhere.cf")
    run(tmp, "web.cf", procs)
    assert cli.main([str(parent), "status", "--format", "yaml"]) == 0
    view = yaml.safe_load(capsys.readouterr().out)
    (missing,) = view["instances"]
    assert (missing["config"], missing["status"]) == ("nowhere.cf", "not_found")
    assert "nowhere.cf" in missing["error"]
