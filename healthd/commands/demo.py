"""`healthd demo`: local backends, healthd supervising them, one failure and its recovery."""

from __future__ import annotations

import argparse
import asyncio


def demo(ns: argparse.Namespace) -> int:
    """Run the demo; exit 0 when the failure and the recovery were both shown."""
    from healthd import logs
    from healthd.demo.scenario import run

    logs.configure(ns.debug, None, json=False)
    try:
        return asyncio.run(run(ns.duration, ns.fake))
    except KeyboardInterrupt:
        return 130
