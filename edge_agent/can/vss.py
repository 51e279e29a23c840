"""Mapping DBC signals to COVESA VSS paths, from a small TOML or JSON file.

The file maps a signal to a VSS path; a key is either ``SIGNAL`` (any message) or
``MESSAGE.SIGNAL`` (that message only, which wins)::

    # vss.toml
    EgoSpeed = "Vehicle.Speed"
    "WheelSpeeds.WheelSpeedFL" = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed"

or, the same in JSON, ``{"EgoSpeed": "Vehicle.Speed", ...}``. In TOML an unquoted dotted key
(``WheelSpeeds.WheelSpeedFL = ...``) means the same as the quoted one. A ``[signals]`` table
holding the mapping is accepted too. Signals without an entry keep their DBC name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edge_agent.untrusted import UntrustedDataError, load_json_bounded, load_toml_bounded

# A mapping names each signal once: a few thousand lines at most.
MAX_MAPPING_BYTES = 4 * 1024 * 1024
VSS_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)+$")


class VssMappingError(ValueError):
    """The mapping file is unreadable or holds an entry that is not ``name = "VSS.Path"``."""


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def parse_vss_mapping(data: Any, source: str = "mapping") -> dict[str, str]:
    """Validate parsed mapping data: ``{"SIGNAL" or "MESSAGE.SIGNAL": "VSS.Path"}``."""
    if not isinstance(data, Mapping):
        raise VssMappingError(f"{source}: expected a table of 'signal = \"VSS.Path\"' entries")
    if set(data) == {"signals"} and isinstance(data["signals"], Mapping):
        data = data["signals"]
    mapping: dict[str, str] = {}
    for key, value in _flatten(data).items():
        if key.count(".") > 1:
            raise VssMappingError(f"{source}: key {key!r} must be SIGNAL or MESSAGE.SIGNAL")
        if not isinstance(value, str) or not VSS_PATH.match(value):
            raise VssMappingError(
                f"{source}: {key}: expected a VSS path like 'Vehicle.Speed' (got {value!r})"
            )
        mapping[key] = value
    return mapping


def load_vss_mapping(path: str | Path) -> dict[str, str]:
    """Read a mapping file (``.json``; anything else is read as TOML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise VssMappingError(f"{path}: cannot read: {error}") from None
    try:
        load = load_json_bounded if path.suffix.lower() == ".json" else load_toml_bounded
        data: Any = load(text, max_bytes=MAX_MAPPING_BYTES, what="mapping")
    except UntrustedDataError as error:
        raise VssMappingError(f"{path}: {error}") from None
    return parse_vss_mapping(data, str(path))


def signal_names(
    mapping: Mapping[str, str], messages: Iterable[Any]
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Resolve ``mapping`` against DBC ``messages``: ``message -> signal -> VSS path``.

    Also returns the mapping keys that matched no signal (likely typos), sorted.
    """
    used: set[str] = set()
    names: dict[str, dict[str, str]] = {}
    for message in messages:
        for signal in message.signals:
            qualified = f"{message.name}.{signal.name}"
            for key in (qualified, signal.name):
                if key in mapping:
                    names.setdefault(message.name, {})[signal.name] = mapping[key]
                    used.add(key)
                    break
    return names, sorted(set(mapping) - used)
