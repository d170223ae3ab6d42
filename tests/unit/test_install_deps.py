"""The default install (`pip install .`, as the README says) runs every ldirectord service.

Every third-party module that healthd or its check library imports, the client libraries
of the ldap, mysql, pgsql, oracle and dns checks included, must come from a distribution in
pyproject.toml's default dependencies, not from an extra.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import checks

ROOT = Path(__file__).resolve().parents[2]
LDIRECTORD_SERVICES = [
    "dns",
    "ftp",
    "http",
    "https",
    "http_proxy",
    "imap",
    "imaps",
    "ldap",
    "ldaps",
    "mysql",
    "nntp",
    "oracle",
    "pop",
    "pops",
    "radius",
    "pgsql",
    "sip",
    "smtp",
    "submission",
    "simpletcp",
]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _default_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        _normal(re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0]) for dep in project["dependencies"]
    }


def _third_party_imports() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in ("healthd", "checks"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.partition(".")[0]
                    if top not in sys.stdlib_module_names and top not in ("healthd", "checks"):
                        found.setdefault(top, path)
    return found


def test_every_imported_library_is_a_default_dependency() -> None:
    dists = packages_distributions()
    default = _default_dependencies()
    imports = _third_party_imports()
    assert {"ldap3", "asyncmy", "asyncpg", "oracledb", "dns"} <= set(imports)
    missing = {
        module: (where.relative_to(ROOT).as_posix(), dists.get(module))
        for module, where in imports.items()
        if not {_normal(d) for d in dists.get(module, [])} & default
    }
    assert missing == {}


def test_every_ldirectord_service_loads_in_this_install() -> None:
    for kind in LDIRECTORD_SERVICES:
        assert checks.load(kind).__name__, kind
