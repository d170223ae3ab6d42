"""The dependency rules of the package layout, checked by walking imports with ast.

- checks/ never imports healthd (it is a standalone library).
- Only healthd.routes.rtnl imports pyroute2 (rtnetlink for announce_*, loaded lazily): the
  IPVS netlink driver does its family lookup and namespace entry itself, and importing
  pyroute2 cost about 0.2 s of a start natively and 5 s in the emulated test VM. The tests
  also use it as an independent IPVS codec.
- The pure core (model, health, reconcile, the engine's topology, health book, kernel record
  and status view, the operator's overrides, config lexer/parser/build,
  ipvs.types) imports no asyncio, aiohttp or pyroute2, not even through the first-party
  modules it imports.
- aiohttp is imported only by the demo's local backends (healthd/demo/) and the operator's
  HTTP server (healthd/web/, imported only when http_listen= is set). The checks speak
  HTTP through checks/_httpclient.py: CPU per check is a stated target, aiohttp costs about
  twice as much per request and a tenth of a second to import.
- The kernel value types (healthd.ipvs and its types) depend on no check library.
- No import cycle among first-party modules, counting the imports made inside functions:
  each room can be read (and loaded) without the ones that use it.
Imports under `if TYPE_CHECKING:` are annotations only and do not count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("healthd", "checks")
PURE = [
    "healthd.model",
    "healthd.health",
    "healthd.reconcile",
    "healthd.topology",
    "healthd.book",
    "healthd.kernel_view",
    "healthd.status_view",
    "healthd.overrides",
    "healthd.config.lexer",
    "healthd.config.parser",
    "healthd.config.build",
    "healthd.config.reals",
    "healthd.config.perl",
    "healthd.config.upstream",
    "healthd.ipvs.types",
]
IO_LIBRARIES = {"asyncio", "aiohttp", "pyroute2"}
AIOHTTP_PACKAGES = ("healthd.demo", "healthd.web")


def _modules() -> dict[str, Path]:
    found = {}
    for package in FIRST_PARTY:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Walk the tree, skipping the bodies of `if TYPE_CHECKING:` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield child
                yield from _nodes(child)
            continue
        yield node
        yield from _nodes(node)


@cache
def imports_of(module: str) -> frozenset[str]:
    """Return the absolute names a first-party module imports (outside TYPE_CHECKING)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return names_in(ast.parse(path.read_text(), str(path)), package)


def names_in(tree: ast.AST, package: str) -> frozenset[str]:
    """Return the absolute module names imported by tree, relative imports resolved."""
    names: set[str] = set()
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(package, node.module, node.level)
            # `from healthd import model` imports the submodule healthd.model; the package's
            # __init__ counts only when a name defined there is imported.
            subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES}
            names.update(subs)
            if len(subs) < len(node.names):
                names.add(base)
    return frozenset(names)


def _resolve(package: str, name: str | None, level: int) -> str:
    if level == 0:
        return name or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - level + 1])
    return f"{base}.{name}" if name else base


def _top(name: str) -> str:
    return name.partition(".")[0]


def chains(start: str) -> Iterator[list[str]]:
    """Yield every first-party import path from start (depth-first, each module once)."""
    seen: set[str] = set()
    stack = [[start]]
    while stack:
        path = stack.pop()
        yield path
        for name in sorted(imports_of(path[-1])):
            if name in MODULES and name not in seen:
                seen.add(name)
                stack.append([*path, name])


def test_the_walker_sees_the_packages() -> None:
    assert "checks.base" in MODULES
    assert "healthd.model" in MODULES
    assert "checks.base" in imports_of("checks")


def test_type_checking_imports_are_ignored() -> None:
    source = "import typing\nif typing.TYPE_CHECKING:\n    import aiohttp\nelse:\n    import json\n"
    assert names_in(ast.parse(source), "checks") == {"typing", "json"}


def test_the_walker_finds_nested_and_relative_imports() -> None:
    source = (
        "def f():\n    import pyroute2.ipvs\n"
        "from . import types\n"
        "from ..config import lexer, load\n"
        "from .driver import IPVSDriver\n"
    )
    names = names_in(ast.parse(source), "healthd.ipvs")
    assert "pyroute2.ipvs" in names  # lazy imports inside functions count
    assert {"healthd.ipvs.types", "healthd.config", "healthd.ipvs.driver"} <= names


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _top(m) == "checks"))
def test_checks_never_import_healthd(module: str) -> None:
    offending = sorted(name for name in imports_of(module) if _top(name) == "healthd")
    assert offending == [], f"{module} imports {offending}"


PYROUTE2_MODULES = ("healthd.routes.rtnl",)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_but_rtnl_imports_pyroute2(module: str) -> None:
    if module in PYROUTE2_MODULES:
        assert any(_top(name) == "pyroute2" for name in imports_of(module))  # still the one
        return
    offending = sorted(name for name in imports_of(module) if _top(name) == "pyroute2")
    assert offending == [], f"{module} imports {offending}"


def test_rtnl_imports_pyroute2_only_inside_a_function() -> None:
    # lazily: a configuration that announces nothing never loads it
    tree = ast.parse(MODULES["healthd.routes.rtnl"].read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = names_in(ast.Module(body=top, type_ignores=[]), "healthd.routes")
    assert not any(_top(n) == "pyroute2" for n in names)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_aiohttp_stays_in_its_corner(module: str) -> None:
    if module.startswith(AIOHTTP_PACKAGES):
        return
    offending = sorted(name for name in imports_of(module) if _top(name) == "aiohttp")
    assert offending == [], f"{module} imports {offending}; checks use checks._httpclient"


def test_the_daemon_loads_aiohttp_and_prometheus_client_only_for_http_listen() -> None:
    # start-up time: the web server's libraries load only when http_listen= is configured
    import subprocess
    import sys

    modules = "healthd.app, healthd.daemon, healthd.engine, healthd.runtime"
    code = (
        f"import sys, {modules}, healthd.web.operator\n"
        "print(sorted(m for m in ('aiohttp', 'prometheus_client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_checks_http_client_imports_no_aiohttp() -> None:
    assert "checks._httpclient" in MODULES
    offending = sorted(n for n in imports_of("checks._httpclient") if _top(n) == "aiohttp")
    assert offending == []


@pytest.mark.parametrize("module", PURE)
def test_pure_core_does_no_io_imports(module: str) -> None:
    assert module in MODULES, f"{module} is gone; update PURE"  # never skip silently
    problems = []
    for chain in chains(module):
        bad = sorted(n for n in imports_of(chain[-1]) if _top(n) in IO_LIBRARIES)
        if bad:
            problems.append(f"{' -> '.join(chain)} imports {', '.join(bad)}")
    assert problems == []


def test_the_kernel_value_types_need_no_check_library() -> None:
    problems = []
    for chain in chains("healthd.ipvs.types"):
        bad = sorted(n for n in imports_of(chain[-1]) if _top(n) == "checks")
        if bad:
            problems.append(f"{' -> '.join(chain)} imports {', '.join(bad)}")
    assert problems == []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle of `graph` (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = set()
        for name in imports_of(module):
            # `import healthd.ipvs.types` also runs the packages above it; a package's
            # __init__ importing its own submodules is how packages work, not a cycle
            if name in MODULES and name != module and not module.startswith(f"{name}."):
                targets.add(name)
        graph[module] = targets
    return graph


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
