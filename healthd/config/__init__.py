"""Reading ldirectord.cf into the Config model: the single entry point (lex → parse → build).

load() reads the file (format_errors() reads it again only when it was not given the
source lines; lookup() probes for it) and resolves names
through a Resolver; with the default SystemResolver it blocks on getaddrinfo, so the daemon
calls it in a worker thread (load_async does exactly that).

API: load(path) -> Config and parse_text(text, path) -> Config raise ConfigErrors (warnings
dropped); load_with_warnings / parse_text_with_warnings / load_async return (Config,
warnings); format_errors(errors or a list of Diagnostics) renders them with carets;
lookup(name) finds the file; dump_model(config) and render_config(config) give it back.
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from typing import TYPE_CHECKING

import checks
from healthd import probes
from healthd.config.build import build
from healthd.config.lexer import Directive, Lexed, lex, split_lines
from healthd.config.lookup import ConfigNotFoundError, lookup
from healthd.config.parser import RawConfig, parse
from healthd.config.resolve import Resolver, StaticResolver, SystemResolver
from healthd.config.upstream import differences
from healthd.errors import ConfigErrors, Diagnostic
from healthd.location import Location, render
from healthd.model import Config

if TYPE_CHECKING:
    from healthd.config.dump import PlainValue

__all__ = [
    "MAX_ERRORS",
    "ConfigErrors",
    "ConfigNotFoundError",
    "Resolver",
    "StaticResolver",
    "SystemResolver",
    "dump_model",
    "format_errors",
    "load",
    "load_async",
    "load_with_warnings",
    "lookup",
    "parse_text",
    "parse_text_with_warnings",
    "render_config",
]

MAX_ERRORS = 50  # errors reported at most; warnings are not counted


def parse_text_with_warnings(
    text: str,
    path: str = "<string>",
    *,
    resolver: Resolver | None = None,
    hostname: str | None = None,
    strict: bool = False,
) -> tuple[Config, list[Diagnostic]]:
    """Return the Config of `text` and its warnings; raise ConfigErrors on any error.

    `hostname` is used for the ftp/sip login defaults (default: this host's name). Lines
    that ldirectord would reject or read differently, and doubtful ones such as a repeated
    real, are warnings marked `Diagnostic.ldirectord`, or errors when `strict`.
    """
    lexed = lex(text, path)
    raw = parse(lexed)
    # ldirectord: $HOSTNAME, else uname -n (for the ftp and sip login defaults)
    hostname = hostname or os.environ.get("HOSTNAME") or socket.gethostname()
    config, found = build(raw, resolver or SystemResolver(), hostname)
    # every check kind is loaded once here (also when other lines have errors, so none is
    # hidden), so a missing optional package is an error at its virtual's line rather
    # than a failure at the first check
    found = [*found, *probes.validate(config, checks.load), *_command_user(raw)]
    found += _upstream(text, path, lexed, raw, found)
    if strict:  # configtest --strict: a file ldirectord reads otherwise is an error
        found = [replace(d, severity="error") if d.ldirectord else d for d in found]
    unique = list(dict.fromkeys(found))  # a global setting may fail once per virtual
    diagnostics = _cap(sorted(unique, key=_order))  # file order, whatever found them
    if any(d.severity == "error" for d in diagnostics):
        raise ConfigErrors(diagnostics, {path: split_lines(text)})
    return config, diagnostics


def _command_user(raw: RawConfig) -> list[Diagnostic]:
    """Return an error when command_user= names no user of this host (a name lookup)."""
    from healthd import privileges

    setting = raw.settings.get("command_user")
    if setting is None or not isinstance(setting.value, str) or privileges.known(setting.value):
        return []
    return [Diagnostic(setting.loc, f"unknown command_user {setting.value!r} (no such user)")]


def _upstream(
    text: str, path: str, lexed: Lexed, raw: RawConfig, found: list[Diagnostic]
) -> list[Diagnostic]:
    """Return a warning where ldirectord would reject or misread a line healthd accepts."""
    errors = {d.loc.line for d in found if d.loc is not None and d.severity == "error"}
    directives = {d.line: d for d in lexed.items if isinstance(d, Directive)}
    fork = raw.settings.get("fork")
    return differences(text, path, directives, errors, fork=fork is not None and fork.value is True)


def parse_text(
    text: str,
    path: str = "<string>",
    *,
    resolver: Resolver | None = None,
    hostname: str | None = None,
) -> Config:
    """Return the Config of ldirectord.cf `text`; raise ConfigErrors on any error."""
    return parse_text_with_warnings(text, path, resolver=resolver, hostname=hostname)[0]


def load_with_warnings(
    path: str,
    *,
    resolver: Resolver | None = None,
    hostname: str | None = None,
    strict: bool = False,
) -> tuple[Config, list[Diagnostic]]:
    """Read and build the file at `path`; return (Config, warnings) or raise ConfigErrors.

    A file that cannot be read raises ConfigErrors with one located error.
    """
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror or exc}"
        raise ConfigErrors([Diagnostic(None, message)], {}) from exc
    return parse_text_with_warnings(text, path, resolver=resolver, hostname=hostname, strict=strict)


def load(path: str, *, resolver: Resolver | None = None, hostname: str | None = None) -> Config:
    """Read the file at `path` into a Config; raise ConfigErrors (warnings are dropped).

    Use load_with_warnings() to get the warnings too.
    """
    return load_with_warnings(path, resolver=resolver, hostname=hostname)[0]


async def load_async(
    path: str, *, resolver: Resolver | None = None, hostname: str | None = None
) -> tuple[Config, list[Diagnostic]]:
    """Run load_with_warnings() in a worker thread, so name lookups never block the loop."""
    import asyncio  # here, so importing the config package never pulls in asyncio

    return await asyncio.to_thread(load_with_warnings, path, resolver=resolver, hostname=hostname)


def dump_model(config: Config) -> dict[str, PlainValue]:
    """Return the model as plain data, every default filled in (healthd.config.dump)."""
    from healthd.config import dump  # only `dump` and the status formats need it

    return dump.dump_model(config)


def render_config(config: Config) -> str:
    """Return the model as ldirectord.cf text (healthd.config.dump)."""
    from healthd.config import dump

    return dump.render_config(config)


def _order(d: Diagnostic) -> tuple[int, int]:
    return (d.loc.line, d.loc.col) if d.loc is not None else (0, 0)


def _cap(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    errors = 0
    out: list[Diagnostic] = []
    for d in diagnostics:
        if d.severity == "error":
            errors += 1
            if errors > MAX_ERRORS:
                out.append(Diagnostic(None, f"too many errors; stopped after {MAX_ERRORS}"))
                break
        out.append(d)
    return out


def format_errors(
    errors: ConfigErrors | list[Diagnostic], sources: dict[str, list[str]] | None = None
) -> str:
    """Return every diagnostic rendered compiler-style, each with its line and a caret.

    Source lines come from the ConfigErrors (or `sources`), else from the file on disk.
    """
    if isinstance(errors, ConfigErrors):
        diagnostics, sources = list(errors.diagnostics), errors.sources
    else:
        diagnostics = errors
    known = dict(sources or {})
    return "\n".join(_render_one(d, known) for d in diagnostics)


def _source_lines(path: str, sources: dict[str, list[str]]) -> list[str]:
    """Return the lines of `path`, from `sources` or else from the file (empty if unreadable)."""
    if path not in sources:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                sources[path] = split_lines(f.read())
        except (OSError, ValueError):
            sources[path] = []
    return sources[path]


def _render_one(d: Diagnostic, sources: dict[str, list[str]]) -> str:
    if d.loc is None:
        return f"{d.severity}: {d.message}"
    lines = _source_lines(d.loc.path, sources)
    source = lines[d.loc.line - 1] if 0 < d.loc.line <= len(lines) else None
    return render(_clip(d.loc, source), d.severity, d.message, source)


def _clip(loc: Location, source: str | None) -> Location:
    """Keep the caret inside the line (a span may end past it)."""
    if source is None:
        return loc
    col = min(loc.col, len(source) + 1)
    return Location(loc.path, loc.line, col, max(1, min(loc.length, len(source) + 1 - col)))
