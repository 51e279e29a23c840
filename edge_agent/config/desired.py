"""Desired state from the cloud: validated like the local file, kept when good, refused when not.

A desired state is ``{"version": ..., "modules": {...}}``: the ``[modules]`` part of the config
(the ``[agent]`` table stays local: identity and paths are the vehicle's own). It is checked by
exactly the same models as the file. The last desired state that applied cleanly is stored in
the state directory and applied again at the next start, so the agent keeps running on its
last good configuration across restarts.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from edge_agent.config.errors import ConfigError, ConfigIssue
from edge_agent.config.loader import LoadedConfig, validate_config

LAST_GOOD_FILE = "desired-state.json"
MAX_DESIRED_BYTES = 256 * 1024


def parse_desired(payload: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """Decode a desired-state payload (JSON object); raise ConfigError with one clear line."""
    if isinstance(payload, dict):
        document: Any = payload
    else:
        raw = payload.encode() if isinstance(payload, str) else payload
        if len(raw) > MAX_DESIRED_BYTES:
            raise ConfigError([ConfigIssue("desired", f"larger than {MAX_DESIRED_BYTES} bytes")])
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise ConfigError([ConfigIssue("desired", f"not valid JSON: {error}")]) from None
    if not isinstance(document, dict):
        raise ConfigError(
            [ConfigIssue("desired", "must be a JSON object", type(document).__name__)]
        )
    unknown = set(document) - {"version", "modules"}
    if unknown:
        raise ConfigError([ConfigIssue(f"desired.{sorted(unknown)[0]}", "unknown key")])
    if not isinstance(document.get("modules"), dict):
        raise ConfigError([ConfigIssue("desired.modules", "must be a table of modules")])
    return document


def validate_desired(current: LoadedConfig, document: dict[str, Any]) -> LoadedConfig:
    """The running config with its modules replaced by the desired ones, fully validated."""
    data = {
        "agent": current.agent.agent.model_dump(mode="json"),
        "modules": document["modules"],
    }
    loaded = validate_config(data, source=f"desired state {document.get('version', '?')}")
    loaded.desired_version = document.get("version")
    return loaded


def store_last_good(state_dir: Path, document: dict[str, Any]) -> None:
    """Durably remember ``document`` as the last good desired state (atomic replace)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".desired.", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, state_dir / LAST_GOOD_FILE)
        directory = os.open(state_dir, os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_last_good(state_dir: Path) -> dict[str, Any] | None:
    """The stored last good desired state, or None when there is none (or it is unreadable)."""
    try:
        return parse_desired((state_dir / LAST_GOOD_FILE).read_bytes())
    except (OSError, ConfigError):
        return None
