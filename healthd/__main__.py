"""`python -m healthd`: the same as the healthd console script."""

from __future__ import annotations

from healthd.cli import main

raise SystemExit(main())
