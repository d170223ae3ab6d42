"""The status page: one server-rendered HTML document, refreshed by the browser itself.

Pure: a status view (the control socket's snapshot) and the recent transitions in, HTML
text out. Every value from the configuration or a check (a real's detail may be anything a
server answered) is escaped. No JavaScript: a meta refresh reloads it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Final

from healthd.web.stats import Change

REFRESH: Final = 5  # seconds

STYLE: Final = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
th { background: #f3f3f3; }
.up { background: #dff3df; } .down { background: #f8d7d7; } .held { background: #fff1c9; }
.muted { color: #777; }
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _health(real: Mapping[str, object]) -> tuple[str, str]:
    """Return (css class, word) for a real's row."""
    admin = real.get("admin")
    if admin:
        return "held", str(admin)
    if real.get("maintenance"):
        return "held", "maintenance"
    return ("up", "up") if real.get("up") else ("down", "down")


def _last(real: Mapping[str, object]) -> tuple[str, str]:
    last = real.get("last")
    if not isinstance(last, Mapping):
        return "not checked yet", ""
    reason = f"{last.get('status')} ({last.get('reason')})"
    detail = str(last.get("detail") or "")
    return reason, f"{detail} {last.get('elapsed_ms')} ms".strip()


def _real_row(real: Mapping[str, object]) -> str:
    css, word = _health(real)
    reason, detail = _last(real)
    kernel = real.get("kernel_weight")
    weight = f"{_e(real.get('weight'))} / {'absent' if kernel is None else _e(kernel)}"
    if real.get("weight_override") is not None:
        weight += f" (set {_e(real.get('weight_override'))})"
    cells = [_e(real.get("real")), _e(real.get("check")), _e(word), weight,
             _e(real.get("failures")), _e(reason), _e(detail)]  # fmt: skip
    tds = "".join(f"<td>{c}</td>" for c in cells)
    return (
        f'<tr class="{css}" data-real="{_e(real.get("real"))}" data-health="{_e(word)}">{tds}</tr>'
    )


def _virtual(view: Mapping[str, object]) -> str:
    name = _e(view.get("virtual"))
    fallback = "fallback active" if view.get("fallback_active") else "fallback off"
    kernel = "in the kernel" if view.get("in_kernel") else "not in the kernel"
    head = "<tr><th>real</th><th>check</th><th>health</th><th>weight config / kernel</th>"
    head += "<th>failures</th><th>last result</th><th>detail</th></tr>"
    reals = view.get("reals")
    rows = (
        "".join(_real_row(r) for r in reals if isinstance(r, Mapping))
        if isinstance(reals, list)
        else ""
    )
    return (
        f'<section data-virtual="{name}"><h2>{name}</h2>'
        f'<p class="muted">{kernel}; {fallback}</p>'
        f"<table>{head}{rows}</table></section>"
    )


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _changes(changes: Iterable[Change]) -> str:
    rows = "".join(
        f'<tr class="{"up" if c.up else "down"}"><td>{_clock(c.at)}</td>'
        f"<td>{_e(c.virtual)}</td><td>{_e(c.real)}</td><td>{'up' if c.up else 'down'}</td>"
        f"<td>{_e(c.reason)}</td></tr>"
        for c in changes
    )
    if not rows:
        return '<p class="muted">none since the daemon started</p>'
    head = "<tr><th>time</th><th>virtual</th><th>real</th><th>now</th><th>reason</th></tr>"
    return f'<table id="transitions">{head}{rows}</table>'


def render(view: Mapping[str, object], changes: Sequence[Change], refresh: int = REFRESH) -> str:
    """Return the status page for a status view and the recent transitions (newest first)."""
    virtuals = view.get("virtuals")
    body = (
        "".join(_virtual(v) for v in virtuals if isinstance(v, Mapping))
        if isinstance(virtuals, list)
        else ""
    )
    daemon = view.get("daemon")
    pid = daemon.get("pid") if isinstance(daemon, Mapping) else None
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{int(refresh)}">'
        f"<title>healthd: {_e(view.get('config'))}</title><style>{STYLE}</style></head><body>"
        f"<h1>healthd: {_e(view.get('config'))}</h1>"
        f'<p class="muted">state {_e(view.get("state"))}, pid {_e(pid)}; refreshes every '
        f'{int(refresh)} s; <a href="/metrics">metrics</a>, <a href="/api/v1/status">JSON</a></p>'
        f"{body or '<p>no virtual services</p>'}"
        f"<h2>Recent transitions</h2>{_changes(changes)}"
        "</body></html>\n"
    )
