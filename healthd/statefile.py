"""The state file: the operator's overrides kept across reloads and restarts.

JSON, `{"version": 1, "overrides": [...]}`, written atomically (a temporary file in the same
directory, fsync, rename, fsync of the directory), so a crash leaves the old file or the new
one, never half of one. The default path is /var/lib/healthd/<config file name>.state.json
(HEALTHD_STATEDIR overrides the directory, for tests); `state_file=` names another.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable

from healthd.errors import HealthdError
from healthd.model import Config
from healthd.overrides import Override, OverrideError, from_dict

DEFAULT_STATEDIR = "/var/lib/healthd"
STATEDIR_ENV = "HEALTHD_STATEDIR"
VERSION = 1


class StateFileError(HealthdError):
    """The state file cannot be read or written."""


def path_for(config: Config) -> str:
    """Return where the overrides of this configuration are kept."""
    if config.state_file:
        return config.state_file
    directory = os.environ.get(STATEDIR_ENV) or DEFAULT_STATEDIR
    return os.path.join(directory, f"{os.path.basename(config.path)}.state.json")


def load(path: str) -> list[Override]:
    """Return the overrides in the file; none when it does not exist; StateFileError if bad."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StateFileError(f"cannot read state file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise StateFileError(f"state file {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise StateFileError(f"state file {path}: expected version {VERSION}")
    entries = data.get("overrides")
    if not isinstance(entries, list):
        raise StateFileError(f"state file {path}: 'overrides' must be a list")
    try:
        return [from_dict(e) if isinstance(e, dict) else from_dict({}) for e in entries]
    except OverrideError as exc:
        raise StateFileError(f"state file {path}: {exc}") from exc


def save(path: str, overrides: Iterable[Override]) -> None:
    """Write the overrides atomically; raise StateFileError (the old file stays) on failure."""
    body = {"version": VERSION, "overrides": [o.as_dict() for o in overrides]}
    text = json.dumps(body, indent=2) + "\n"
    directory = os.path.dirname(path) or "."
    import tempfile  # here: only an operator's change writes, a start only reads

    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state.", dir=directory)
    except OSError as exc:
        raise StateFileError(f"cannot write state file {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _sync_dir(directory)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StateFileError(f"cannot write state file {path}: {exc.strerror}") from exc


def _sync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
