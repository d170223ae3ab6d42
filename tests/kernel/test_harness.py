"""Host-side tests of the kernel harness: report import, skip rules, initramfs and cache helpers.

These run without the VM: an inner pytest plays the guest (HEALTHD_KERNEL=1, --kernel-report)
and another plays the host (--kernel-replay), so the import logic is tested end to end.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kernel import vm
from tests.kernel.image import Newc, cache_dir, load_order, parse_depends
from tests.kernel.vm import _Console, _write_guest_files

GUEST_TESTS = """
import os
import pytest

pytestmark = pytest.mark.kernel

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke in the guest")

def test_passes():
    pass

def test_fails():
    assert 40 + 1 == 42, "guest arithmetic"

def test_skips():
    pytest.skip("no sctp here")

@pytest.mark.xfail(reason="known kernel bug", strict=True)
def test_xfails():
    assert False

def test_setup_error(broken):
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n == 1

@pytest.mark.skipif(os.environ.get("HEALTHD_KERNEL") != "1", reason="needs the kernel")
def test_skipif_is_the_guests_business():
    assert os.environ["HEALTHD_KERNEL"] == "1"
"""
PLUGIN = ("-p", "tests.kernel.plugin")
HOST_TEST = """
def test_host_side():
    pass
"""


@pytest.fixture
def clean_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Set up the inner runs: no harness variables, and pytest-asyncio's option set."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    for name in ("HEALTHD_KERNEL", "HEALTHD_SKIP_KERNEL", "CI", "HEALTHD_VM"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _guest_report(pytester: pytest.Pytester, env: pytest.MonkeyPatch) -> Path:
    """Run the kernel tests as the guest would and return the report it wrote."""
    pytester.makepyfile(test_guest=GUEST_TESTS, test_host=HOST_TEST)
    report = pytester.path / "report.jsonl"
    env.setenv("HEALTHD_KERNEL", "1")
    result = pytester.runpytest(*PLUGIN, f"--kernel-report={report}")
    result.assert_outcomes(passed=4, failed=2, skipped=1, xfailed=1, errors=1)
    env.delenv("HEALTHD_KERNEL")
    return report


def test_host_reports_guest_results_test_by_test(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    report = _guest_report(pytester, clean_env)
    result = pytester.runpytest(*PLUGIN, f"--kernel-replay={report}", "-rA")
    # The host-only test ran here; the guest's outcomes came back one by one.
    result.assert_outcomes(passed=4, failed=2, skipped=1, xfailed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "E   *RuntimeError: fixture broke in the guest",
            "E   *AssertionError: guest arithmetic",
            "PASSED test_host.py::test_host_side",
            "SKIPPED [[]1[]] test_guest.py:*: no sctp here",
            "XFAIL test_guest.py::test_xfails - known kernel bug",
            "FAILED test_guest.py::test_fails - AssertionError: guest arithmetic",
            "FAILED test_guest.py::test_param[[]2[]] - assert 2 == 1",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_kernel_test_missing_from_the_guest_report_fails(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    report = _guest_report(pytester, clean_env)
    lines = report.read_text().splitlines()
    report.write_text("\n".join(line for line in lines if "test_passes" not in line))
    result = pytester.runpytest(*PLUGIN, f"--kernel-replay={report}")
    result.assert_outcomes(passed=3, failed=3, skipped=1, xfailed=1, errors=1)
    result.stdout.fnmatch_lines(["*the VM run did not report this test*"])


def test_without_qemu_kernel_tests_fail_not_skip(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_guest=GUEST_TESTS, test_host=HOST_TEST)
    clean_env.setenv("PATH", str(pytester.mkdir("empty-bin")))
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1, failed=8)
    result.stdout.fnmatch_lines(["*the test VM failed: qemu-system-x86_64 not found*"])


def test_an_unwritable_vm_cache_fails_each_kernel_test_clearly(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_guest=GUEST_TESTS, test_host=HOST_TEST)
    blocker = pytester.path / "file"
    blocker.write_text("")
    clean_env.setenv("HEALTHD_VM_CACHE", str(blocker / "cache"))  # under a file
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1, failed=8)
    result.stdout.fnmatch_lines(["*the test VM failed: cannot keep console logs in */file/cache*"])


def test_skip_kernel_skips_loudly(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_guest=GUEST_TESTS, test_host=HOST_TEST)
    clean_env.setenv("HEALTHD_SKIP_KERNEL", "1")
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1, skipped=8)
    result.stdout.fnmatch_lines(["*HEALTHD_SKIP_KERNEL=1: kernel tests are SKIPPED*"])
    result.stdout.fnmatch_lines(["*HEALTHD_SKIP_KERNEL=1: 8 kernel tests SKIPPED*"])


def test_skip_kernel_is_refused_in_ci(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_guest=GUEST_TESTS)
    clean_env.setenv("HEALTHD_SKIP_KERNEL", "1")
    clean_env.setenv("CI", "true")
    result = pytester.runpytest(*PLUGIN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*HEALTHD_SKIP_KERNEL=1 is refused when CI=true*"])


def test_deselected_kernel_tests_do_not_boot_the_vm(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_guest=GUEST_TESTS, test_host=HOST_TEST)
    missing = pytester.path / "no-such-report.jsonl"
    result = pytester.runpytest(*PLUGIN, "-m", "not kernel", f"--kernel-replay={missing}")
    result.assert_outcomes(passed=1, deselected=8)


def test_parse_depends_finds_the_kernel_version() -> None:
    output = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n"
    assert parse_depends(output) == "6.1.0-56-amd64"
    assert parse_depends("linux-image-amd64\n") is None


def test_load_order_puts_dependencies_first() -> None:
    deps = {"9p": ["9pnet", "fscache", "netfs"], "fscache": ["netfs"], "netfs": [], "9pnet": []}
    order = load_order(deps, ["9p"])
    assert sorted(order) == ["9p", "9pnet", "fscache", "netfs"]
    assert order.index("netfs") < order.index("fscache") < order.index("9p")
    assert order.index("9pnet") < order.index("9p")


def test_newc_archive_reads_back_with_cpio(tmp_path: Path) -> None:
    archive = Newc()
    archive.directory("bin")
    archive.file("bin/hello", b"odd-sized body!", 0o755)
    archive.chardev("console", 5, 1)
    listing = subprocess.run(
        ["cpio", "-itv"], input=archive.finish(), capture_output=True, check=True
    ).stdout.decode()
    rows = [line.split() for line in listing.splitlines()]
    assert [(row[0], row[-1]) for row in rows] == [
        ("drwxr-xr-x", "bin"),
        ("-rwxr-xr-x", "bin/hello"),
        ("crw-------", "console"),
    ]
    subprocess.run(
        ["cpio", "-id", "--quiet", "bin/*"], input=archive.finish(), cwd=tmp_path, check=True
    )
    assert (tmp_path / "bin" / "hello").read_bytes() == b"odd-sized body!"


def test_console_streams_only_the_command_output(tmp_path: Path) -> None:
    log_path, stream = tmp_path / "console.log", io.StringIO()
    with log_path.open("w") as log:
        console = _Console(log, stream)
        for chunk in (b"[ 1.0] boot noise\r\nhealthd-vm: rea", b"dy\r\nout 1\r\n", b"out 2\r\n"):
            console.feed(chunk, now=5.0)
        console.feed(b"healthd-vm: done\r\n[ 9.0] reboot: Power down\r\n", now=9.0)
    assert console.ready_at == 5.0
    assert stream.getvalue() == "out 1\nout 2\n"
    assert log_path.read_text().endswith("healthd-vm: done\n[ 9.0] reboot: Power down\n")


def test_guest_command_keeps_odd_arguments_intact(tmp_path: Path) -> None:
    show = "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ['EXTRA']]))"
    odd = ["a b", "tests/x.py::t[1-$HOME]", "it's", ""]
    argv = [sys.executable, "-c", show, *odd]
    _write_guest_files(tmp_path, argv, {"EXTRA": "x $y"}, Path("/tmp/ci/main"), Path("/k/root"))
    out = subprocess.run(
        ["sh", str(tmp_path / "cmd.sh")], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == [odd, "x $y"]
    assert "HEALTHD_VM_CHECKOUT=/tmp/ci/main\n" in (tmp_path / "vm.env").read_text()


def test_guest_python_inside_a_checkout_under_the_guests_tmpfs_is_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vm, "HIDDEN", (tmp_path,))  # as /tmp is in the guest
    checkout = tmp_path / "x" / "y"
    python = checkout / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_bytes(b"")  # a copied interpreter: it resolves inside the checkout
    assert vm.guest_python(checkout) == str(python)


def test_guest_python_in_a_virtualenv_linked_under_the_guests_tmpfs_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vm, "HIDDEN", (tmp_path,))
    elsewhere = tmp_path / "venv"
    (elsewhere / "bin").mkdir(parents=True)
    (elsewhere / "bin" / "python").symlink_to(sys.executable)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / ".venv").symlink_to(elsewhere)
    with pytest.raises(vm.VMError, match=r"\.venv resolves to .*/venv, which the VM's tmpfs"):
        vm.guest_python(checkout)


def test_a_relative_cache_directory_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEALTHD_VM_CACHE", "rel/cache")
    here = Path.cwd()  # tmp_path, as the operating system spells it
    assert cache_dir() == here / "rel" / "cache"
    monkeypatch.delenv("HEALTHD_VM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", "xdg")
    assert cache_dir() == here / "xdg" / "healthd"


def test_an_unwritable_kernel_cache_is_a_vm_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("HEALTHD_VM_CACHE", str(blocker / "cache"))  # under a file
    monkeypatch.setenv("HEALTHD_VM_KERNEL", "6.1.0-0-amd64")  # no apt-cache lookup
    monkeypatch.setattr(vm, "_check_tools", lambda: None)  # qemu is not what is tested
    with pytest.raises(vm.VMError, match=r"cannot prepare the VM's kernel in .*/file/cache: "):
        vm.run(["true"], console_log=tmp_path / "console.log")
