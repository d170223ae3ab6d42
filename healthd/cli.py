"""Command line: ldirectord's verbs and options, plus healthd's own commands.

Parses arguments and dispatches to healthd.commands.*; it does no work of its own, so each
command's module can be imported (and its dependencies loaded) only when it is used.

Forms accepted, as ldirectord's are:
    healthd [options] [CONFIG] VERB [verb options]
    healthd [options] -c CONFIG [VERB] [verb options]
With no verb, healthd runs in the foreground (the systemd form).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from healthd import __version__

if TYPE_CHECKING:
    import argparse

EXIT_OK = 0
EXIT_USAGE = 255  # ldirectord: pod2usage(-exitval => -1)

# verb -> "module:function"; each function takes the parsed Namespace and returns an exit code
COMMANDS: dict[str, str] = {
    "run": "healthd.commands.run:run",
    "start": "healthd.commands.start:start",
    "stop": "healthd.commands.stop:stop",
    "restart": "healthd.commands.restart:restart",
    "try-restart": "healthd.commands.restart:try_restart",
    "reload": "healthd.commands.reload:reload",
    "force-reload": "healthd.commands.reload:reload",
    "status": "healthd.commands.status:status",
    "configtest": "healthd.commands.config:configtest",
    "dump": "healthd.commands.config:dump",
    "check": "healthd.commands.check:check",
    "ipvs": "healthd.commands.ipvs:ipvs",
    "demo": "healthd.commands.demo:demo",
    "ctl": "healthd.commands.ctl:ctl",
}

USAGE = """\
healthd [-d] [-c CONFIG] [CONFIG] VERB [options]

ldirectord verbs:  start stop restart try-restart reload force-reload status
healthd verbs:     run (default: foreground, for systemd)  configtest  dump
                   check [VIRTUAL [REAL]]  ipvs dump  demo
                   ctl drain|ready|maint|weight VIRTUAL REAL [N]
"""


def _parser_class() -> type[argparse.ArgumentParser]:
    import argparse  # here: `run` and `start` re-exec before it would be of any use

    class _Parser(argparse.ArgumentParser):
        """ArgumentParser whose usage errors exit 255, as ldirectord's do (argparse says 2,
        which is the exit status of a configuration error)."""

        def error(self, message: str) -> NoReturn:
            self.print_usage(sys.stderr)
            self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    return _Parser


def _verb_parsers() -> dict[str, argparse.ArgumentParser]:
    _Parser = _parser_class()
    parsers: dict[str, argparse.ArgumentParser] = {}
    for verb in COMMANDS:
        parsers[verb] = _Parser(prog=f"healthd {verb}", add_help=True)
    fmt = ("yaml", "json")
    parsers["configtest"].add_argument(
        "--strict",
        action="store_true",
        help="make every line ldirectord would reject or read differently an error",
    )
    parsers["dump"].add_argument("--format", choices=fmt, default="yaml")
    parsers["status"].add_argument("--format", choices=("text", *fmt), default="text")
    parsers["check"].add_argument("virtual", nargs="?", help="virtual service, e.g. 192.0.2.10:80")
    parsers["check"].add_argument("real", nargs="?", help="real server, e.g. 198.51.100.5:80")
    parsers["check"].add_argument("--format", choices=("text", *fmt), default="text")
    parsers["ipvs"].add_argument("action", choices=("dump",))
    parsers["ipvs"].add_argument("--format", choices=("ipvsadm", *fmt), default="ipvsadm")
    ctl = parsers["ctl"]
    ctl.add_argument("action", choices=("drain", "ready", "maint", "weight"))
    ctl.add_argument("virtual", help="virtual service, e.g. 192.0.2.10:80")
    ctl.add_argument("real", help="real server, e.g. 198.51.100.5:80")
    ctl.add_argument("value", nargs="?", help="weight: the new weight; drain: timeout seconds")
    parsers["demo"].add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="longest run in seconds; ends once the recovery is shown (0: until Ctrl-C)",
    )
    parsers["demo"].add_argument(
        "--fake", action="store_true", help="use the in-memory table even where IPVS is available"
    )
    parsers["demo"].add_argument(
        "--http", type=int, default=9188, metavar="PORT",
        help="serve the status page and metrics on 127.0.0.1:PORT (default 9188; 0: any)",
    )  # fmt: skip
    parsers["demo"].add_argument("--no-http", action="store_true", help="no status page")
    return parsers


def _global_parser() -> argparse.ArgumentParser:
    import argparse

    p = _parser_class()(
        prog="healthd",
        usage=USAGE,
        description="Health-checking controller for LVS/IPVS, compatible with ldirectord.cf.",
    )
    p.add_argument("-c", "--config", metavar="CONFIG", help="configuration file")
    p.add_argument("-d", "--debug", action="store_true", help="foreground, debug logging")
    p.add_argument(
        "-t", "--config-test", action="store_true", help="check the configuration and exit"
    )
    p.add_argument("-v", "--version", action="version", version=f"healthd {__version__}")
    p.add_argument("words", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Return the parsed command line; exits with usage (255) on a malformed one."""
    ns = _global_parser().parse_args(list(argv))
    words: list[str] = list(ns.words)
    if words and words[0] == "--":
        words.pop(0)
    positional_config: str | None = None
    if words and words[0] not in COMMANDS and not words[0].startswith("-"):
        positional_config = words.pop(0)
    verb = "configtest" if ns.config_test else (words.pop(0) if words else "run")
    if verb not in COMMANDS:
        sys.stderr.write(f"healthd: unknown command {verb!r}\n{USAGE}")
        raise SystemExit(EXIT_USAGE)
    if positional_config is not None and ns.config is not None:
        sys.stderr.write("healthd: give the configuration either with -c or as CONFIG, not both\n")
        raise SystemExit(EXIT_USAGE)
    sub = _verb_parsers()[verb].parse_args(words)
    merged = type(sub)(**vars(sub))
    merged.verb = verb
    merged.debug = ns.debug
    merged.config_arg = ns.config if ns.config is not None else positional_config
    return merged


def _resolve(target: str) -> Callable[[argparse.Namespace], int]:
    module, _, func = target.partition(":")
    fn: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), func)
    return fn


def _mark_early(argv: Sequence[str]) -> None:
    """Put ldirectord's marker in the command line now if it plainly runs the daemon.

    `run`, `start` and `restart` carry "ldirectord" in their cmdline (healthd.marker: a new
    title in place, or a re-exec where that fails); doing it before argparse and the verbs
    are imported saves a re-exec'd first process their loading. Anything less plain (an
    option other than -c, say -d) is left to the verb, which marks itself at the same point.
    """
    words: list[str] = []
    args = iter(argv)
    for word in args:
        if word in ("-c", "--config"):
            next(args, None)
        elif word.startswith("-"):
            return
        else:
            words.append(word)
    if words and words[0] not in COMMANDS:
        words.pop(0)  # the configuration, named before the verb
    if (words[0] if words else "run") in ("run", "start", "restart"):
        from healthd import marker

        marker.ensure()


def main(argv: Sequence[str] | None = None) -> int:
    """Run healthd with the given (or the process's) arguments and return the exit code."""
    if argv is None:
        _mark_early(sys.argv[1:])
    args = parse(sys.argv[1:] if argv is None else argv)
    return _resolve(COMMANDS[args.verb])(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
