"""Start-up imports only what the configuration uses, checked in a fresh interpreter.

Each case runs in its own `python -c` process (imports are process-wide) and lists the
heavy modules that ended up loaded: aiohttp (the demo's servers only), pyroute2 (never:
the tests' independent IPVS codec), yaml and the config dump (dump and status formats only),
and the check modules the configuration does not name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WATCHED = (
    "aiohttp",
    "pyroute2",
    "yaml",
    "healthd.config.dump",
    "healthd.ipvs.fake",
    "checks.http",
    "checks.ldap",
    "checks.mysql",
    "checks.dns",
)
HTTP_CONFIG = "virtual=192.0.2.10:80\n\treal=192.0.2.11:80 gate\n\tservice=http\n"


def loaded_after(code: str) -> set[str]:
    """Run `code` in a fresh interpreter; return which WATCHED modules it loaded."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps([m for m in {WATCHED!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture
def http_cf(tmp_path: Path) -> Path:
    path = tmp_path / "web.cf"
    path.write_text(HTTP_CONFIG)
    return path


def test_configtest_loads_only_the_http_check(http_cf: Path) -> None:
    code = f"from healthd import cli\nassert cli.main(['-c', {str(http_cf)!r}, 'configtest']) == 0"
    assert loaded_after(code) == {"checks.http"}


def test_a_dns_configuration_loads_the_dns_check_and_no_other(tmp_path: Path) -> None:
    cf = tmp_path / "dns.cf"
    cf.write_text(
        "virtual=192.0.2.10:53\n\treal=192.0.2.11:53 gate\n\tprotocol=udp\n\tservice=dns\n"
    )
    code = f"from healthd import config\nconfig.load({str(cf)!r})"
    assert loaded_after(code) == {"checks.dns"}


def test_the_daemon_and_its_netlink_driver_load_no_pyroute2() -> None:
    code = "import healthd.app, healthd.daemon, healthd.engine, healthd.ipvs.netlink"
    assert loaded_after(code) == set()


def test_dump_loads_yaml_and_the_dump_module(http_cf: Path) -> None:
    code = f"from healthd import cli\nassert cli.main(['-c', {str(http_cf)!r}, 'dump']) == 0"
    assert {"yaml", "healthd.config.dump"} <= loaded_after(code)


# what the daemon's start for a plain HTTP configuration no longer loads: yarl (the HTTP
# check parses a URL only for a request that needs it: about 11 ms of a 0.2 s start),
# difflib (suggestions for a misspelt directive) and tempfile (state file writes)
NOT_AT_START = ("yarl", "difflib", "tempfile")


def test_the_daemon_start_for_an_http_config_loads_no_url_parser(http_cf: Path) -> None:
    code = f"""
import json, sys
import checks
from healthd import app, config, daemon, engine, marker, probes, runtime, statefile
from healthd.commands import run
cfg = config.load({str(http_cf)!r})
virtual = cfg.virtuals[0]
probe = probes.build(virtual, virtual.reals[0], checks.load)
assert probe.check._plan(probe.target).direct is not None  # the first request, prepared
print(json.dumps([m for m in {NOT_AT_START!r} if m in sys.modules]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_parsing_the_daemon_command_line_loads_no_shutil() -> None:
    # argparse's formatter imports shutil (and bz2, lzma, zlib) for the terminal's width;
    # healthd's measures it the same way itself and builds only the verb's own parser
    code = (
        "import json, sys\nfrom healthd import cli\nns = cli.parse(['-c', 'web.cf'])\n"
        "print(json.dumps([ns.verb, 'shutil' in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert json.loads(out) == ["run", False]


@pytest.mark.parametrize("columns", ["50", "200", ""])
def test_help_is_laid_out_as_argparse_lays_it_out(columns: str) -> None:
    code = (
        "import argparse\nfrom healthd import cli\n"
        "for p in [cli._global_parser(), *(cli._verb_parser(v) for v in cli.COMMANDS)]:\n"
        "    ours = p.format_help()\n    p.formatter_class = argparse.HelpFormatter\n"
        "    assert ours == p.format_help(), p.prog\n"
    )
    env = {**os.environ, "COLUMNS": columns}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env)


def test_the_collector_is_tuned_before_the_daemon_s_modules_load() -> None:
    # with Python's 700 the imports that follow ran about a tenth slower (healthd.heap)
    code = (
        "import gc, json, sys\nfrom healthd import cli, heap\ncli._mark_early(['-c', 'web.cf'])\n"
        "print(json.dumps([gc.get_threshold()[0] == heap.YOUNG,"
        " [m for m in ('asyncio', 'structlog', 'healthd.plugins') if m in sys.modules]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert json.loads(out) == [True, []]
