"""Fixtures for the real-kernel tests (they run inside the test VM, see tests/kernel/vm.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kernel.netns import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Namespaces and veth links for one test, all deleted afterwards."""
    with Lab() as created:
        yield created
