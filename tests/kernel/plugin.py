"""pytest plugin: tests marked ``kernel`` run in the test VM and report as the host's own.

On the host (no HEALTHD_KERNEL=1) each selected kernel test becomes a GuestItem with the same
node id. At the first of them, one VM boot runs pytest on all of them (tests/kernel/vm.py);
the guest writes every report (setup, call, teardown) as a JSON line, and each GuestItem
replays its guest reports: outcome, message, traceback, captured output and duration.
With HEALTHD_KERNEL=1 (inside the VM, or on a machine with IPVS) kernel tests run directly.
HEALTHD_SKIP_KERNEL=1 skips them loudly; it is refused when CI=true.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import pytest

from tests.kernel import vm

if TYPE_CHECKING:
    from _pytest.nodes import Node

KERNEL_MARK = "kernel"
# Marks a GuestItem must not carry: the guest already evaluated them.
GUEST_ONLY_MARKS = frozenset(
    {"skip", "skipif", "xfail", "usefixtures", "filterwarnings", "parametrize"}
)
MODE_KEY = pytest.StashKey["KernelSession"]()
When = Literal["setup", "call", "teardown"]


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("healthd-kernel", "healthd real-kernel tests")
    group.addoption(
        "--kernel-report",
        metavar="PATH",
        help="write every test report to PATH as JSON lines (used inside the test VM)",
    )
    group.addoption(
        "--kernel-replay",
        metavar="PATH",
        help="take kernel test results from PATH (written by --kernel-report) instead of the VM",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{KERNEL_MARK}: needs root and ip_vs (runs in the test VM)")
    if _truthy("HEALTHD_KERNEL"):
        mode = "native"
    elif _truthy("HEALTHD_SKIP_KERNEL"):
        if _truthy("CI"):
            raise pytest.UsageError("HEALTHD_SKIP_KERNEL=1 is refused when CI=true")
        mode = "skip"
    else:
        mode = "vm"
    config.stash[MODE_KEY] = KernelSession(config, mode)
    report = config.getoption("--kernel-report")
    if report:
        config.pluginmanager.register(ReportWriter(config, Path(report)), "healthd-kernel-report")


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.stash[MODE_KEY].mode == "skip":
        return "!!! HEALTHD_SKIP_KERNEL=1: kernel tests are SKIPPED, not run !!!"
    return None


class ReportWriter:
    """Writes each test and failed collection report as one JSON line (the guest side)."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.file: IO[str] = path.open("w", encoding="utf-8")

    def _write(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self.file.write(json.dumps(data) + "\n")
        self.file.flush()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._write(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._write(report)

    def pytest_unconfigure(self) -> None:
        self.file.close()


class GuestResults:
    """Reports read back from the guest, by (node id, phase), plus what went wrong overall."""

    def __init__(self) -> None:
        self.reports: dict[tuple[str, str], pytest.TestReport] = {}
        self.problems: list[str] = []


def load_reports(config: pytest.Config, lines: Iterator[str]) -> GuestResults:
    """Rebuild the guest's reports from JSON lines written by ReportWriter."""
    results = GuestResults()
    for line in lines:
        if not line.strip():
            continue
        report = config.hook.pytest_report_from_serializable(config=config, data=json.loads(line))
        if isinstance(report.longrepr, list):
            # JSON has no tuples; a skip's (path, line, reason) must be one again.
            report.longrepr = tuple(report.longrepr)
        if isinstance(report, pytest.TestReport):
            results.reports[(report.nodeid, report.when or "call")] = report
        elif isinstance(report, pytest.CollectReport):
            results.problems.append(f"collecting {report.nodeid} failed:\n{report.longreprtext}")
    return results


class KernelRunError(Exception):
    """A kernel test has no result from the guest; the message says why."""


class GuestItem(pytest.Item):
    """Stands for a kernel test on the host; its reports come from the VM run."""

    def __init__(self, *, origin: pytest.Item, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._origin_info = origin.reportinfo()
        self.own_markers.extend(origin.own_markers)
        self.keywords.update(origin.keywords)

    def iter_markers_with_node(self, name: str | None = None) -> Iterator[tuple[Node, pytest.Mark]]:
        """Iterate markers as for the real test, minus those the guest evaluated already."""
        for node, mark in super().iter_markers_with_node(name):
            if mark.name not in GUEST_ONLY_MARKS:
                yield node, mark

    def runtest(self) -> None:
        """Does nothing: the test ran in the guest."""

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self._origin_info

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, KernelRunError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)


class KernelSession:
    """Decides how kernel tests run, and runs the VM once for all of them."""

    def __init__(self, config: pytest.Config, mode: str) -> None:
        self.config = config
        self.mode = mode
        self.items: list[GuestItem] = []
        self.results: GuestResults | None = None
        self.summary = ""

    def replace(self, items: list[pytest.Item]) -> list[pytest.Item]:
        """Return ITEMS with kernel tests swapped for GuestItems, moved to the end."""
        local = [i for i in items if i.get_closest_marker(KERNEL_MARK) is None]
        for item in items:
            if item.get_closest_marker(KERNEL_MARK) is not None:
                assert item.parent is not None
                guest = GuestItem.from_parent(item.parent, name=item.name, origin=item)
                self.items.append(guest)
        return [*local, *self.items]

    def get_results(self) -> GuestResults:
        if self.results is None:
            self.results = self._collect()
        return self.results

    def _collect(self) -> GuestResults:
        if self.mode == "skip":
            return GuestResults()
        replay = self.config.getoption("--kernel-replay")
        if replay:
            with Path(replay).open(encoding="utf-8") as fh:
                return load_reports(self.config, fh)
        return self._run_vm()

    def _guest_argv(self) -> list[str]:
        argv = [vm.guest_python(), "-m", "pytest", "-p", "no:cacheprovider", "-m", KERNEL_MARK]
        argv += [f"--kernel-report={vm.GUEST_RESULTS}/report.jsonl"]
        argv += [f"--tb={self.config.option.tbstyle}"]
        argv += ["-l"] if self.config.option.showlocals else []
        return [*argv, "--", *(item.nodeid for item in self.items)]

    def _run_vm(self) -> GuestResults:
        try:
            log = vm.new_console_log()
        except vm.VMError as exc:
            results = GuestResults()
            results.problems.append(f"the test VM failed: {exc}")
            return results
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write("\n" if tr.verbosity < 0 else "")
            tr.write_line(f"kernel: {len(self.items)} tests run in the test VM (console: {log})")
        started = time.monotonic()
        run: vm.VMRun | None = None
        problem = None
        with tempfile.TemporaryDirectory(prefix="healthd-kernel-") as tmp:
            try:
                run = vm.run(self._guest_argv(), results=Path(tmp), console_log=log)
            except vm.VMError as exc:
                problem = f"the test VM failed: {exc}"
            # Tests the guest finished before a failure or timeout keep their results.
            path = Path(tmp) / "report.jsonl"
            lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
            results = load_reports(self.config, iter(lines))
        if run is not None and run.returncode not in (0, 1):
            problem = (
                f"pytest in the VM exited {run.returncode}; console log {log}:\n{vm.tail(log)}"
            )
        if problem:
            results.problems.append(problem)
        boot = f"boot {run.boot_seconds:.1f} s, " if run else ""
        self.summary = (
            f"kernel: {len(self.items)} tests in the VM, {boot}"
            f"whole run {time.monotonic() - started:.1f} s (console log {log})"
        )
        return results

    def report(self, item: GuestItem, when: When) -> pytest.TestReport:
        """Return the host's report for one phase of ITEM: the guest's, or a made-up one."""
        results = self.get_results()
        found = results.reports.get((item.nodeid, when))
        if found is not None:
            return found
        # Nothing from the guest: pass setup and teardown, and fail (or skip) the call.
        if when == "setup" and self.mode == "skip":
            reason = "HEALTHD_SKIP_KERNEL=1: kernel test not run"
            call = pytest.CallInfo.from_call(lambda: _skip(reason), when="setup")
        elif when == "call":
            problem = "\n".join(results.problems) or "the VM run did not report this test"
            call = pytest.CallInfo.from_call(lambda: _fail(problem), when="call")
        else:
            call = pytest.CallInfo.from_call(lambda: None, when=when)
        return pytest.TestReport.from_item_and_call(item, call)


def _skip(reason: str) -> None:
    raise pytest.skip.Exception(reason, _use_item_location=True)


def _fail(message: str) -> None:
    raise KernelRunError(message)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    kernel = config.stash[MODE_KEY]
    if kernel.mode != "native":
        items[:] = kernel.replace(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    if isinstance(item, GuestItem) and call.when != "collect":
        return item.config.stash[MODE_KEY].report(item, call.when)
    return None


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    kernel = config.stash[MODE_KEY]
    if kernel.mode == "skip" and kernel.items:
        terminalreporter.write_sep(
            "!", f"HEALTHD_SKIP_KERNEL=1: {len(kernel.items)} kernel tests SKIPPED", red=True
        )
    elif kernel.summary:
        terminalreporter.write_line(kernel.summary)
