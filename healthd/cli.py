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
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

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


def _columns() -> int:
    """Return the terminal's width as shutil.get_terminal_size() does (COLUMNS, else the
    terminal of stdout, else 80)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _parser_class() -> type[argparse.ArgumentParser]:
    import argparse  # here: `run` and `start` re-exec before it would be of any use

    class _Formatter(argparse.HelpFormatter):
        """argparse's formatter, sized as shutil.get_terminal_size would, without importing
        shutil (and bz2, lzma, zlib with it) for a daemon that prints no help."""

        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: int | None = None) -> None:  # fmt: skip
            width = _columns() - 2 if width is None else width
            super().__init__(prog, indent_increment, max_help_position, width)

    class _Parser(argparse.ArgumentParser):
        """ArgumentParser whose usage errors exit 255, as ldirectord's do (argparse says 2,
        which is the exit status of a configuration error)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("formatter_class", _Formatter)
            super().__init__(*args, **kwargs)

        def error(self, message: str) -> NoReturn:
            self.print_usage(sys.stderr)
            self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    return _Parser


_FORMATS = ("yaml", "json")
# verb -> its own arguments, as (flags, add_argument keywords); a verb not named takes none
_VERB_ARGUMENTS: dict[str, tuple[tuple[tuple[str, ...], dict[str, Any]], ...]] = {
    "configtest": (
        (("--strict",), {
            "action": "store_true",
            "help": "make every line ldirectord would reject or read differently an error",
        }),
    ),
    "dump": ((("--format",), {"choices": _FORMATS, "default": "yaml"}),),
    "status": ((("--format",), {"choices": ("text", *_FORMATS), "default": "text"}),),
    "check": (
        (("virtual",), {"nargs": "?", "help": "virtual service, e.g. 192.0.2.10:80"}),
        (("real",), {"nargs": "?", "help": "real server, e.g. 198.51.100.5:80"}),
        (("--format",), {"choices": ("text", *_FORMATS), "default": "text"}),
    ),
    "ipvs": (
        (("action",), {"choices": ("dump",)}),
        (("--format",), {"choices": ("ipvsadm", *_FORMATS), "default": "ipvsadm"}),
    ),
    "ctl": (
        (("action",), {"choices": ("drain", "ready", "maint", "weight")}),
        (("virtual",), {"help": "virtual service, e.g. 192.0.2.10:80"}),
        (("real",), {"help": "real server, e.g. 198.51.100.5:80"}),
        (("value",), {"nargs": "?", "help": "weight: the new weight; drain: timeout seconds"}),
    ),
    "demo": (
        (("--duration",), {
            "type": float, "default": 30.0,
            "help": "longest run in seconds; ends once the recovery is shown (0: until Ctrl-C)",
        }),
        (("--fake",), {
            "action": "store_true",
            "help": "use the in-memory table even where IPVS is available",
        }),
        (("--http",), {
            "type": int, "default": 9188, "metavar": "PORT",
            "help": "serve the status page and metrics on 127.0.0.1:PORT (default 9188; 0: any)",
        }),
        (("--no-http",), {"action": "store_true", "help": "no status page"}),
    ),
}  # fmt: skip


def _verb_parser(verb: str) -> argparse.ArgumentParser:
    """Return the parser of one verb's own arguments (only that verb's: a start builds one)."""
    parser = _parser_class()(prog=f"healthd {verb}", add_help=True)
    for flags, keywords in _VERB_ARGUMENTS.get(verb, ()):
        parser.add_argument(*flags, **keywords)
    return parser


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
    sub = _verb_parser(verb).parse_args(words)
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
    The collector is tuned for the daemon here too (healthd.heap), so the imports that
    follow run with it: about a tenth of their CPU less.
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
        from healthd import heap, marker

        marker.ensure()
        heap.tune()  # before the daemon's modules load: their objects are the long-lived heap


def main(argv: Sequence[str] | None = None) -> int:
    """Run healthd with the given (or the process's) arguments and return the exit code."""
    if argv is None:
        _mark_early(sys.argv[1:])
    args = parse(sys.argv[1:] if argv is None else argv)
    return _resolve(COMMANDS[args.verb])(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
