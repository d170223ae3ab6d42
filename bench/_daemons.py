"""The contenders of the VM start-up benchmark: healthd and keepalived, as a user runs them.

Each gets the same topology written in its own syntax: N reals 127.1.X.Y:80 (bench/_nginx.py),
10 per virtual on 192.0.2.V:80, direct routing, wrr, weight 1, an HTTP GET of /ok.html every
2 s with a 3 s timeout, a failed real removed. Each runs as its own process tree pinned to one
core; the helpers here read that tree's CPU time and memory from /proc. Nothing here is part
of healthd.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from _nginx import address

INTERVAL: Final = 2.0
TIMEOUT: Final = 3.0
PER_VIRTUAL: Final = 10


def virtuals(n: int) -> list[tuple[str, list[str]]]:
    """Return each virtual's address and its reals' addresses (192.0.2.V, 127.1.X.Y)."""
    out = []
    for v in range((n + PER_VIRTUAL - 1) // PER_VIRTUAL):
        reals = [address(i) for i in range(v * PER_VIRTUAL, min(n, (v + 1) * PER_VIRTUAL))]
        # documentation addresses; nothing is sent to them (the table is only programmed)
        out.append((f"192.0.2.{v % 250 + 1}", reals))
    if len(out) > 250:
        raise ValueError(f"at most 2,500 reals: {n}")
    return out


def healthd_config(n: int, port: int, logfile: Path) -> str:
    """Return an ldirectord.cf for the topology."""
    lines = [
        f"checkinterval={INTERVAL:g}",
        f"checktimeout={TIMEOUT:g}",
        "quiescent=no",
        f'logfile="{logfile}"',
        "",
    ]
    for vip, reals in virtuals(n):
        lines.append(f"virtual={vip}:{port}")
        lines += [f"    real={r}:{port} gate 1" for r in reals]
        lines += ["    service=http", "    scheduler=wrr", '    request="ok.html"']
        lines += ['    receive="ok"', ""]
    return "\n".join(lines)


def keepalived_config(n: int, port: int) -> str:
    """Return a keepalived.conf (checker only) for the topology."""
    lines = ["global_defs {", "    router_id healthd_bench", "}", ""]
    for vip, reals in virtuals(n):
        lines += [
            f"virtual_server {vip} {port} {{",
            f"    delay_loop {INTERVAL:g}",
            "    lvs_sched wrr",
            "    lvs_method DR",
            "    protocol TCP",
        ]
        for r in reals:
            lines += [
                f"    real_server {r} {port} {{",
                "        weight 1",
                "        HTTP_GET {",
                "            url {",
                "                path /ok.html",
                "                status_code 200",
                "            }",
                f"            connect_timeout {TIMEOUT:g}",
                "        }",
                "    }",
            ]
        lines += ["}", ""]
    return "\n".join(lines)


def command(daemon: str, n: int, port: int, workdir: Path, core: int) -> list[str]:
    """Write the daemon's configuration into workdir; return its command line, pinned."""
    pin = ["taskset", "-c", str(core)]
    if daemon == "healthd":
        cf = workdir / f"healthd-{n}.cf"
        cf.write_text(healthd_config(n, port, workdir / f"healthd-{n}.log"))
        healthd = Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin" / "healthd"
        exe = str(healthd) if healthd.exists() else ".venv/bin/healthd"
        return [*pin, exe, "-c", str(cf)]
    if daemon == "keepalived":
        conf = workdir / f"keepalived-{n}.conf"
        conf.write_text(keepalived_config(n, port))
        pids = [f"--pid={workdir}/keepalived.pid", f"--checkers_pid={workdir}/checkers.pid"]
        return [
            *pin,
            "keepalived",
            "--dont-fork",
            "--log-console",
            "--check",
            "-f",
            str(conf),
            *pids,
        ]
    raise ValueError(f"unknown daemon {daemon!r}")


def tree(pid: int) -> list[int]:
    """Return pid and all its descendants (via /proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@dataclass(frozen=True, slots=True)
class Usage:
    """A process tree's CPU seconds so far and resident memory now."""

    cpu: float
    rss_mb: float


def usage(pid: int) -> Usage:
    ticks, rss_kb = 0, 0
    for p in tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        ticks += int(stat[11]) + int(stat[12])  # utime, stime
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss_kb += int(line.split()[1])
    return Usage(ticks / os.sysconf("SC_CLK_TCK"), rss_kb / 1024)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon, wait, and kill it if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for p in reversed(tree(proc.pid)):
                os.kill(p, signal.SIGKILL)
            proc.wait()
