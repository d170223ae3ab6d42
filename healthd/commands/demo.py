"""`healthd demo`: local backends, healthd supervising them, one failure and its recovery."""

from __future__ import annotations

import argparse
import asyncio
import sys


def demo(ns: argparse.Namespace) -> int:
    """Run the demo; exit 0 when the failure and the recovery were both shown."""
    from healthd import logs
    from healthd.demo.scenario import run
    from healthd.errors import HealthdError

    logs.configure(ns.debug, None, json=False)
    try:
        return asyncio.run(run(ns.duration, ns.fake, http_port=None if ns.no_http else ns.http))
    except KeyboardInterrupt:
        return 130
    except HealthdError as exc:  # the local real servers or the table could not be set up
        print(f"healthd demo: {exc}", file=sys.stderr)
        return 1
