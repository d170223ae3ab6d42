"""Fixtures for the real-kernel tests (they run inside the test VM, see tests/kernel/vm.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kernel.e2e_helpers import Daemons
from tests.kernel.netns import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Namespaces and veth links for one test, all deleted afterwards."""
    with Lab() as created:
        yield created


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory for one healthd's config, log and control socket, removed afterwards."""
    # short: the control socket's path must fit in sun_path
    path = Path(tempfile.mkdtemp(prefix="hd"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemons(workdir: Path) -> Iterator[Daemons]:
    """Start healthd in an e2e topology (WORKDIR holds its files); all stopped afterwards."""
    started = Daemons(workdir)
    yield started
    started.close()
