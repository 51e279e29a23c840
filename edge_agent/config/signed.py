"""Signed config targets: privileged module settings that arrived through TUF, kept and applied.

The OTA module resolves, downloads and verifies a config target against the same TUF
repository and keys as bundles (docs/security.md), waits until the vehicle is parked, then
hands the document to the supervisor (``agent/config/signed``). The document is
``{"version": "N[.N...]", "modules": {NAME: {...}}}``: each module table replaces the file's
table for that module. ``[agent]`` and ``[spool]`` are not part of it: they stay local.
The one in force is kept in ``STATE_DIR/signed-config.json`` and laid over the file at start.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from edge_agent.config.compose import compose
from edge_agent.config.desired import LOCAL_ONLY, LOCAL_TABLES, store_document
from edge_agent.config.errors import ConfigError, ConfigIssue
from edge_agent.config.loader import LoadedConfig
from edge_agent.ota.versions import parse_version

SIGNED_FILE = "signed-config.json"


def parse_signed(document: Any) -> dict[str, Any]:
    """Check the shape of a signed config document; ConfigError with one line when wrong."""
    if not isinstance(document, dict):
        raise ConfigError([ConfigIssue("signed config", "must be a JSON object")])
    for key in sorted(set(document) - {"version", "modules"}):
        if key in LOCAL_TABLES:
            raise ConfigError([ConfigIssue(f"signed config.{key}", LOCAL_ONLY)])
        raise ConfigError([ConfigIssue(f"signed config.{key}", "unknown key")])
    version = document.get("version")
    try:
        parse_version(version if isinstance(version, str) else "")
    except ValueError:
        raise ConfigError(
            [ConfigIssue("signed config.version", "must be dotted numbers like 3 or 1.4", version)]
        ) from None
    modules = document.get("modules")
    if not isinstance(modules, dict) or not all(
        isinstance(name, str) and isinstance(table, dict) for name, table in modules.items()
    ):
        raise ConfigError([ConfigIssue("signed config.modules", "must be a table of tables")])
    return document


def validate_signed(current: LoadedConfig, document: dict[str, Any]) -> tuple[LoadedConfig, bool]:
    """``current``'s file with ``document`` as its signed layer; and whether desired was dropped.

    The desired state in force is laid over the new base again; when it no longer fits (it
    tunes a module the signed config removed, say), it is dropped rather than blocking a
    signed change: the second value is then True.
    """
    layers = dataclasses.replace(current.layers, signed=document)
    try:
        return compose(layers), False
    except ConfigError:
        if layers.desired is None:
            raise
    return compose(dataclasses.replace(layers, desired=None)), True


def store_signed(state_dir: Path, document: dict[str, Any] | None) -> None:
    """Durably keep ``document`` as the signed config in force (None: go back to the file)."""
    store_document(state_dir / SIGNED_FILE, document)


def load_signed(state_dir: Path) -> dict[str, Any] | None:
    """The signed config in force, or None when there is none (or it is unreadable)."""
    try:
        return parse_signed(json.loads((state_dir / SIGNED_FILE).read_bytes()))
    except (OSError, ValueError, ConfigError):
        return None
