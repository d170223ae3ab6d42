"""A plugin's run() ends when the daemon cancels it, even if it was woken in the same turn.

The daemon's task group waits for every plugin's run() at stop. On Python 3.11,
`asyncio.wait_for(event.wait(), period)` returns normally when the event is set in the
same loop turn as the cancellation, and the cancellation is lost: the plugin loops on and
the daemon hangs, answering no further signal (seen after a SIGHUP woke the route and
sync-daemon plugins). Each plugin whose loop waits for a wake-up is cancelled here right
after being woken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from healthd.config import StaticResolver, parse_text
from healthd.ipvs.fake import FakeDriver
from healthd.plugins import Plugin
from healthd.routes.announcer import Announcer
from healthd.syncd import SyncdControl

CONFIG = parse_text(
    "syncd=master\nsyncd_interface=lo\nsyncd_id=1\n"
    "virtual=192.0.2.10:80\n    real=198.51.100.1:80 gate\n",
    "t.cf",
    resolver=StaticResolver(interfaces=frozenset({"lo"})),
)


def _announcer() -> Plugin:
    def no_table() -> object:
        raise AssertionError("nothing announces here: no table is opened")

    return Announcer(CONFIG, open_table=no_table)  # type: ignore[arg-type]


def _syncd() -> Plugin:
    return SyncdControl(CONFIG, FakeDriver())


@pytest.mark.parametrize("make", [_announcer, _syncd], ids=["announcer", "syncd"])
async def test_a_plugin_woken_as_it_is_cancelled_still_ends(make: Callable[[], Plugin]) -> None:
    plugin = make()
    task = asyncio.create_task(plugin.run())
    await asyncio.sleep(0.01)  # the loop is waiting for its wake-up or its period
    plugin._wake.set()  # type: ignore[attr-defined]  # woken (a reload, a fallback change) ...
    task.cancel()  # ... in the same turn as the daemon's stop
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done, "the plugin went on after its cancellation"
    assert task.cancelled()
