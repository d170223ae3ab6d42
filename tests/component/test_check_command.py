"""`healthd check`: the configured checks run once against real loopback HTTP servers.

The command runs as a user runs it (a subprocess of `python -m healthd`), while the HTTP
backends live in the test's event loop on 127.0.0.1 ephemeral ports.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from ipaddress import ip_address
from pathlib import Path

import pytest
import structlog
import yaml
from aiohttp import web

from healthd.commands.check import UsageError, match_real, match_virtual, select
from healthd.model import Proto
from tests.component.support import config, real, virtual


@pytest.fixture(autouse=True)
def _restore_logging():
    """check() configures logging for the process; undo it for the tests that follow."""
    yield
    root = logging.getLogger("healthd")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.propagate = True
    structlog.reset_defaults()


async def backend(aiohttp_server, status: int = 200, body: str = "ok"):
    async def ok(request: web.Request) -> web.Response:
        return web.Response(status=status, text=body)

    app = web.Application()
    app.router.add_get("/ok.html", ok)
    return await aiohttp_server(app, host="127.0.0.1")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_cf(tmp_path: Path, *ports: int, extra: str = "") -> Path:
    reals = "".join(f"\treal=127.0.0.1:{p} masq\n" for p in ports)
    text = (
        "virtual=192.0.2.10:80\n"
        f"{reals}"
        "\tservice=http\n"
        '\trequest="/ok.html"\n'
        '\treceive="ok"\n'
        "\tnegotiatetimeout=2\n"
        f"{extra}"
    )
    path = tmp_path / "ldirectord.cf"
    path.write_text(text)
    return path


async def healthd(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "healthd",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_all_up_exits_0_and_prints_each_result(aiohttp_server, tmp_path):
    a = await backend(aiohttp_server)
    b = await backend(aiohttp_server)
    cf = write_cf(tmp_path, a.port, b.port)
    code, out, err = await healthd("-c", str(cf), "check")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    for line, port in zip(lines, (a.port, b.port), strict=True):
        words = line.split()
        assert words[:5] == ["tcp/192.0.2.10:80", f"127.0.0.1:{port}", "http", "up", "ok"]
        assert words[6] == "ms"


async def test_a_down_real_exits_1_with_reason_and_detail(aiohttp_server, tmp_path):
    good = await backend(aiohttp_server)
    bad = await backend(aiohttp_server, status=503)
    wrong = await backend(aiohttp_server, body="maintenance page")
    dead = closed_port()
    cf = write_cf(tmp_path, good.port, bad.port, wrong.port, dead)
    code, out, _ = await healthd("-c", str(cf), "check", "--format", "json")
    assert code == 1
    rows = {row["real"]: row for row in json.loads(out)}
    assert rows[f"127.0.0.1:{good.port}"]["status"] == "up"
    assert rows[f"127.0.0.1:{bad.port}"]["status"] == "down"
    assert "503" in rows[f"127.0.0.1:{bad.port}"]["detail"]
    assert rows[f"127.0.0.1:{wrong.port}"]["reason"] == "body_mismatch"
    assert rows[f"127.0.0.1:{dead}"]["reason"] == "refused"
    assert all(isinstance(row["elapsed_ms"], float) for row in rows.values())


async def test_virtual_and_real_arguments_select_one_real(aiohttp_server, tmp_path):
    good = await backend(aiohttp_server)
    dead = closed_port()
    cf = write_cf(tmp_path, good.port, dead)
    code, out, _ = await healthd(
        "-c", str(cf), "check", "tcp/192.0.2.10:80", f"127.0.0.1:{good.port}", "--format", "yaml"
    )
    assert code == 0
    rows = yaml.safe_load(out)
    assert [r["real"] for r in rows] == [f"127.0.0.1:{good.port}"]
    assert rows[0]["virtual"] == "tcp/192.0.2.10:80"


async def test_config_error_exits_2_rendered_like_configtest(tmp_path):
    cf = tmp_path / "bad.cf"
    cf.write_text("virtual=192.0.2.10:80\n\treal=127.0.0.1:80 gatee\n")
    code, out, err = await healthd("-c", str(cf), "check")
    assert code == 2
    assert out == ""
    assert f"{cf}:2:" in err
    assert "^" in err


async def test_unknown_virtual_exits_2(tmp_path):
    cf = write_cf(tmp_path, closed_port())
    code, _, err = await healthd("-c", str(cf), "check", "192.0.2.99:80")
    assert code == 2
    assert "no virtual service matches '192.0.2.99:80'" in err


def test_checks_nothing_in_maintenance_and_reports_it(tmp_path):
    from healthd.commands.check import run_checks

    cfg = config(virtual(real("127.0.0.1", closed_port())), maintenancedir=str(tmp_path))
    (tmp_path / "127.0.0.1").touch()
    rows = asyncio.run(run_checks(cfg, [(cfg.virtuals[0], cfg.virtuals[0].reals[0])]))
    assert rows[0]["status"] == "down"
    assert rows[0]["reason"] == "maintenance"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("192.0.2.10:80", True),
        ("tcp/192.0.2.10:80", True),
        ("udp/192.0.2.10:80", False),
        ("192.0.2.10", True),
        ("192.0.2.10:81", False),
        ("198.51.100.1:80", False),
    ],
)
def test_match_virtual_v4(spec, expected):
    assert match_virtual(spec, virtual(real("198.51.100.1"))) is expected


def test_match_virtual_v6_and_fwmark():
    v6 = virtual(real("2001:db8::5"), address="2001:db8::1")
    assert match_virtual("[2001:db8::1]:80", v6)
    assert match_virtual("tcp/[2001:db8::1]:80", v6)
    assert not match_virtual("[2001:db8::2]:80", v6)
    fwm = virtual(real("198.51.100.1", 0)).__class__(
        proto=Proto.FWM, address=None, port=0, fwmark=5, reals=(real("198.51.100.1", 0),)
    )
    assert match_virtual("fwm/5", fwm)
    assert match_virtual("5", fwm)
    assert not match_virtual("fwm/6", fwm)
    assert not match_virtual("192.0.2.10:80", fwm)


def test_match_real_forms():
    r = real("2001:db8::5", 8080)
    assert match_real("[2001:db8::5]:8080", r)
    assert match_real("2001:db8::5", r)
    assert match_real("[2001:db8::5]", r)
    assert not match_real("[2001:db8::5]:80", r)
    assert match_real("198.51.100.1:80", real("198.51.100.1"))


def test_select_reports_what_matched_nothing():
    cfg = config(virtual(real("198.51.100.1"), real("198.51.100.2")))
    assert len(select(cfg, None, None)) == 2
    assert [r.address for _, r in select(cfg, None, "198.51.100.2")] == [ip_address("198.51.100.2")]
    with pytest.raises(UsageError, match="no real server matches"):
        select(cfg, "192.0.2.10:80", "198.51.100.9")
    with pytest.raises(UsageError, match="not an address"):
        select(cfg, "nonsense:80", None)
    with pytest.raises(UsageError, match=r"not a port number in '192\.0\.2\.10:http': 'http'"):
        select(cfg, "192.0.2.10:http", None)
    with pytest.raises(UsageError, match=r"not a port number in '\[2001:db8::5\]:x': 'x'"):
        select(cfg, None, "[2001:db8::5]:x")


def namespace(cf: Path | str | None, *args: str, fmt: str = "text"):
    import argparse

    want_virtual, want_real = [*args, None, None][:2]
    return argparse.Namespace(
        config_arg=str(cf) if cf else None,
        virtual=want_virtual,
        real=want_real,
        format=fmt,
        debug=False,
    )


async def test_in_process_text_and_json(aiohttp_server, tmp_path, capsys):
    from healthd.commands.check import check

    good = await backend(aiohttp_server)
    dead = closed_port()
    cf = write_cf(tmp_path, good.port, dead)
    assert await asyncio.to_thread(check, namespace(cf)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[3:5] == ["up", "ok"]
    assert lines[1].split()[3:5] == ["down", "refused"]
    assert lines[1].endswith("Connection refused")
    code = await asyncio.to_thread(check, namespace(cf, "5", fmt="json"))
    assert code == 2
    assert "no virtual service matches '5'" in capsys.readouterr().err


def test_in_process_config_errors(tmp_path, capsys):
    from healthd.commands.check import check

    assert check(namespace(tmp_path / "missing.cf")) == 2
    assert "missing.cf" in capsys.readouterr().err
    bad = tmp_path / "bad.cf"
    bad.write_text("virtual=192.0.2.10:80\n\treal=127.0.0.1:80 gatee\n")
    assert check(namespace(bad)) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err
    assert "1 configuration error" in err


def test_on_and_off_are_reported_without_checking():
    from healthd.commands.check import run_checks
    from healthd.model import CheckSpec, CheckType

    on = virtual(real("198.51.100.1"), check=CheckSpec(checktype=CheckType.ON))
    off = virtual(real("198.51.100.2"), port=81, check=CheckSpec(checktype=CheckType.OFF))
    cfg = config(on, off)
    rows = asyncio.run(run_checks(cfg, select(cfg, None, None)))
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("up", "checktype=on"),
        ("unchecked", "checktype=off"),
    ]


async def test_check_never_loads_an_ipvs_driver(aiohttp_server, tmp_path):
    # the operator's "why is this real down?" must not touch the kernel table: not even the
    # modules that could (the netlink driver, pyroute2, the in-memory driver) are loaded
    good = await backend(aiohttp_server)
    cf = write_cf(tmp_path, good.port)
    code = (
        "import sys\n"
        "from healthd import cli\n"
        f"rc = cli.main(['-c', {str(cf)!r}, 'check'])\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('healthd.ipvs.netlink',"
        " 'healthd.ipvs.fake', 'healthd.engine', 'pyroute2')))\n"
        "print('RESULT', rc, loaded)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines()[-1] == "RESULT 0 []"
