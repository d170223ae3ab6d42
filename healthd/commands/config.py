"""`healthd configtest` (-t, --config-test) and `healthd dump`: read a config and report.

configtest exits 0 when the file is valid (warnings on stderr), 2 with every error on
stderr, 1 when the file is not found or cannot be read; with --strict a line ldirectord
would reject or read differently is an error, not a warning. dump prints the normalised
model.
"""

from __future__ import annotations

import argparse
import json
import sys

from healthd import config as cfg
from healthd.config.lexer import split_lines
from healthd.errors import ConfigErrors, Diagnostic
from healthd.model import Config

EXIT_OK = 0
EXIT_NOT_FOUND = 1  # ldirectord: init_error "Config file ... not found"
EXIT_CONFIG = 2  # ldirectord: config_error


def _read(ns: argparse.Namespace) -> tuple[Config, list[Diagnostic], str] | int:
    """Return (config, warnings, rendered warnings) or an exit code after reporting."""
    try:
        path = cfg.lookup(getattr(ns, "config_arg", None))
    except cfg.ConfigNotFoundError as exc:
        sys.stderr.write(f"healthd: {exc}\n")
        return EXIT_NOT_FOUND
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as exc:
        sys.stderr.write(f"healthd: cannot read {path}: {exc.strerror or exc}\n")
        return EXIT_NOT_FOUND
    try:
        strict = bool(getattr(ns, "strict", False))
        config, warnings = cfg.parse_text_with_warnings(text, path, strict=strict)
    except ConfigErrors as errors:
        sys.stderr.write(cfg.format_errors(errors) + "\n")
        sys.stderr.write(f"healthd: {path}: {errors.summary()}\n")
        return EXIT_CONFIG
    rendered = cfg.format_errors(warnings, {path: split_lines(text)}) if warnings else ""
    return config, warnings, rendered


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def configtest(ns: argparse.Namespace) -> int:
    """Check the configuration; print errors and warnings on stderr; return the exit code."""
    result = _read(ns)
    if isinstance(result, int):
        return result
    config, _, rendered = result
    if rendered:
        sys.stderr.write(rendered + "\n")
    reals = sum(len(v.reals) for v in config.virtuals)
    counts = f"{_plural(len(config.virtuals), 'virtual service')}, {_plural(reals, 'real server')}"
    sys.stdout.write(f"{config.path}: configuration OK ({counts})\n")
    return EXIT_OK


def dump(ns: argparse.Namespace) -> int:
    """Print the normalised model (every default filled in) as YAML or JSON."""
    result = _read(ns)
    if isinstance(result, int):
        return result
    config, _, rendered = result
    if rendered:
        sys.stderr.write(rendered + "\n")
    data = cfg.dump_model(config)
    if getattr(ns, "format", "yaml") == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        import yaml  # only this format needs it

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    return EXIT_OK
