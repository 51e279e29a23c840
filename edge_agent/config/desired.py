"""Desired state from the cloud: tunable settings only, refused whole when it names anything else.

A desired state is ``{"version": ..., "modules": {NAME: {"config": {...}}}}``: tunable
settings of modules already enabled on this vehicle, merged field by field into the
configuration below it (the file and the signed config target, see
:mod:`edge_agent.config.compose`). ``[agent]`` and ``[spool]`` stay local. One that names a
privileged setting (code, commands, paths, hosts, ports, TLS, CAN interfaces, fast-path
policy, supervision) or another module is refused with one line per such field, before
anything in it is validated, imported or run. Each desired state is laid over the same base:
a setting it leaves out returns to the base's value.

The last desired state that applied cleanly is stored in the state directory and applied
again at the next start, so the agent keeps running on its last good configuration across
restarts.

The stored file may have been written by another version (keys or modules this one does not
know) or damaged. Then the safe state is the vehicle's own config file: the agent runs on it
and says why in one line (logged, and ``agent.desired_ignored`` in health); the stored file
is left as it is for the version that wrote it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.config.compose import compose
from edge_agent.config.errors import ConfigError, ConfigIssue
from edge_agent.config.loader import LoadedConfig
from edge_agent.durable import fsync_dir, write_bytes_atomic
from edge_agent.untrusted import UntrustedDataError, load_json_bounded

LAST_GOOD_FILE = "desired-state.json"
LOCAL_TABLES = ("agent", "spool")
LOCAL_ONLY = "local table: [agent] and [spool] come from the vehicle's own config file only"
MAX_DESIRED_BYTES = 256 * 1024
MAX_DESIRED_DEPTH = 32


def parse_desired(payload: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """Decode a desired-state payload (JSON object); raise ConfigError with one clear line."""
    if isinstance(payload, dict):
        document: Any = payload
    else:
        try:
            document = load_json_bounded(
                payload,
                max_bytes=MAX_DESIRED_BYTES,
                max_depth=MAX_DESIRED_DEPTH,
                what="desired state",
            )
        except UntrustedDataError as error:
            raise ConfigError([ConfigIssue("desired", str(error))]) from None
    if not isinstance(document, dict):
        raise ConfigError(
            [ConfigIssue("desired", "must be a JSON object", type(document).__name__)]
        )
    unknown = set(document) - {"version", "modules"}
    for key in sorted(unknown):
        if key in LOCAL_TABLES:
            raise ConfigError([ConfigIssue(f"desired.{key}", LOCAL_ONLY)])
    if unknown:
        raise ConfigError([ConfigIssue(f"desired.{sorted(unknown)[0]}", "unknown key")])
    if not isinstance(document.get("modules"), dict):
        raise ConfigError([ConfigIssue("desired.modules", "must be a table of modules")])
    return document


def validate_desired(current: LoadedConfig, document: dict[str, Any]) -> LoadedConfig:
    """``current``'s file and signed config with ``document`` laid over them, fully validated.

    ConfigError lists every privileged setting or unknown module named (then nothing else
    was looked at), or else every validation problem.
    """
    return compose(dataclasses.replace(current.layers, desired=document))


def store_last_good(state_dir: Path, document: dict[str, Any] | None) -> None:
    """Durably remember ``document`` as the last good desired state (None: forget it)."""
    store_document(state_dir / LAST_GOOD_FILE, document)


def store_document(path: Path, document: dict[str, Any] | None) -> None:
    """Durably replace ``path`` with ``document`` as JSON (atomic), or remove it for None."""
    if document is None:
        path.unlink(missing_ok=True)
        if path.parent.is_dir():
            fsync_dir(path.parent)
        return
    write_bytes_atomic(path, json.dumps(document).encode())


@dataclass(frozen=True)
class StoredDesiredState:
    """The stored last good desired state as read: the document, or why it cannot be used."""

    document: dict[str, Any] | None
    problem: str = ""


def read_last_good(state_dir: Path) -> StoredDesiredState:
    """Read the stored last good desired state; never raises.

    No file: no document, no problem. A file this version cannot use (unreadable, truncated,
    too large, a key it does not know): no document and a one-line ``problem``.
    """
    path = state_dir / LAST_GOOD_FILE
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_DESIRED_BYTES + 1)
    except FileNotFoundError:
        return StoredDesiredState(None)
    except OSError as error:
        return StoredDesiredState(None, f"{path} cannot be read ({error.strerror or error})")
    try:
        return StoredDesiredState(parse_desired(raw))
    except ConfigError as error:
        return StoredDesiredState(None, f"{path}: {error.lines()[0]}")


def load_last_good(state_dir: Path) -> dict[str, Any] | None:
    """The stored last good desired state, or None when there is none (or it is unusable)."""
    return read_last_good(state_dir).document
