"""`healthd configtest` / `-t` / `--config-test` and `healthd dump`: output and exit codes."""

from __future__ import annotations

import errno
import json

import pytest
import yaml

from healthd.cli import main
from healthd.commands import config as command

GOOD = "quiescent=yes\nvirtual=192.0.2.10:80\n    real=198.51.100.1:80 gate\n"
WARN = "checkcount=2\nvirtual=192.0.2.10:80\n    real=198.51.100.1:80 gate\n"
BAD = "virtual=192.0.2.10:80\n    real = 10.0.0.5:80 gatee 2\n    scheduler=Foo1\n"


@pytest.fixture
def cf(tmp_path):
    def write(text: str, name: str = "test.cf") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


@pytest.mark.parametrize(
    "argv",
    [["-c", "{}", "configtest"], ["{}", "configtest"], ["-t", "-c", "{}"], ["--config-test", "{}"]],
)
def test_configtest_valid_exits_0(cf, capsys, argv):
    path = cf(GOOD)
    assert main([a.format(path) for a in argv]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: configuration OK (1 virtual service, 1 real server)\n"
    assert err == ""


def test_configtest_warnings_go_to_stderr_and_exit_0(cf, capsys):
    path = cf(WARN)
    assert main(["-c", path, "configtest"]) == 0
    _, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{path}:1:1: warning: checkcount is deprecated and slated for removal; please see "
        "'failurecount' (it still sets the number of ping attempts)",
        "    checkcount=2",
        "    ^~~~~~~~~~",
    ]


def test_configtest_errors_exit_2_with_every_error(cf, capsys):
    path = cf(BAD)
    assert main(["-c", path, "configtest"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}:2:24: error: unknown forwarding method 'gatee' (expected gate, masq or ipip)",
        "        real = 10.0.0.5:80 gatee 2",
        "                           ^~~~~",
        f"{path}:3:15: error: unknown scheduler 'Foo1' (expected rr, wrr, lc, wlc, lblc, lblcr, "
        "dh, sh, sed, nq, fo, ovf, mh, twos)",
        "        scheduler=Foo1",
        "                  ^~~~",
        f"healthd: {path}: 2 configuration errors",
    ]


def test_configtest_missing_file_exits_1(tmp_path, capsys):
    missing = str(tmp_path / "nope.cf")
    assert main(["-c", missing, "configtest"]) == 1
    _, err = capsys.readouterr()
    assert err == f"healthd: config file {missing} not found (tried {missing})\n"


def test_configtest_unreadable_path_exits_1(tmp_path, capsys):
    (tmp_path / "dir.cf").mkdir()
    (tmp_path / "dir.cf" / "x").write_text("")
    assert main(["-c", str(tmp_path / "dir.cf"), "configtest"]) == 1
    assert "not found" in capsys.readouterr().err


def test_configtest_file_that_cannot_be_read_exits_1(cf, capsys, monkeypatch):
    # root reads any file whatever its mode, so the refusal a normal user meets is simulated
    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    path = cf(GOOD)
    monkeypatch.setattr(command, "open", refuse, raising=False)
    assert main(["-c", path, "configtest"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"healthd: cannot read {path}: Permission denied\n"


def test_dump_yaml_has_every_default(cf, capsys):
    assert main(["-c", cf(GOOD), "dump"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    (virtual,) = data["virtuals"]
    assert virtual["name"] == "tcp/192.0.2.10:80"
    assert virtual["quiescent"] is True
    assert virtual["check"]["service"] == "http"
    assert virtual["check"]["negotiatetimeout"] == 30.0
    assert data["logfile"] == "/var/log/ldirectord.log"


def test_dump_json(cf, capsys):
    assert main(["-c", cf(GOOD), "dump", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["virtuals"][0]["reals"][0]["address"] == "198.51.100.1"


def test_dump_bad_config_exits_2(cf, capsys):
    assert main(["-c", cf(BAD), "dump"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "error: unknown forwarding method 'gatee'" in err


SUPERSET = "rise=2\nvirtual=192.0.2.10:80\n    real=198.51.100.1:80 gate\n    request=/health\n"


def test_configtest_warns_where_ldirectord_would_reject_and_exits_0(cf, capsys):
    path = cf(SUPERSET)
    assert main(["-c", path, "configtest"]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: configuration OK (1 virtual service, 1 real server)\n"
    assert err.splitlines() == [
        f"{path}:1:1: warning: ldirectord would reject this line (Unknown command: 'rise' is "
        "healthd's own directive)",
        "    rise=2",
        "    ^",
        f"{path}:4:13: warning: ldirectord would reject this line (Unknown command: it needs the "
        'value in double quotes: request="...")',
        "        request=/health",
        "                ^",
    ]


@pytest.mark.parametrize("argv", [["-c", "{}", "configtest", "--strict"], ["-t", "{}", "--strict"]])
def test_configtest_strict_makes_them_errors_and_exits_2(cf, capsys, argv):
    path = cf(SUPERSET)
    assert main([a.format(path) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}:1:1: error: ldirectord would reject this line")
    assert lines[3].startswith(f"{path}:4:13: error: ldirectord would reject this line")
    assert lines[-1] == f"healthd: {path}: 2 configuration errors"


def test_configtest_strict_passes_a_file_ldirectord_reads_alike(cf, capsys):
    path = cf(GOOD)
    assert main(["-c", path, "configtest", "--strict"]) == 0
    assert capsys.readouterr().err == ""


def test_configtest_strict_refuses_a_repeated_real_and_exits_2(cf, capsys):
    path = cf("virtual=192.0.2.10:80\n    real=192.0.2.11:80 gate\n    real=192.0.2.11:80 gate 5\n")
    assert main(["-c", path, "configtest"]) == 0
    assert capsys.readouterr().err.startswith(f"{path}:3:5: warning: duplicate real server")
    assert main(["-c", path, "configtest", "--strict"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == (
        f"{path}:3:5: error: duplicate real server 192.0.2.11:80 in this virtual service (first "
        "at line 2); the kernel holds it once, so healthd keeps the first line's weight and options"
    )
    assert lines[-1] == f"healthd: {path}: 1 configuration error"
