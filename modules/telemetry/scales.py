"""DBC conversions as batch-encoder hints: a scaled CAN value travels as the integer it was.

The CAN decoder publishes physical values ``raw * scale + offset``; given the same
``scale``/``offset`` as a :class:`~edge_agent.modules.telemetry.batch.LinearScale`, the
batch encoder stores ``raw`` (delta-encoded) instead of searching for a scale itself, and
checks every value for exactness, so a wrong hint costs bytes, never data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cantools.database.can import Database

from edge_agent.can.databases import load_database
from edge_agent.can.resources import resolve_data_path
from edge_agent.modules.telemetry.batch import LinearScale


def dbc_scales(
    database: Database, signal_names: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, LinearScale]:
    """Hints for every signal with a non-trivial linear conversion, by published name.

    ``signal_names`` is the CAN decoder's ``message -> signal -> published name`` map (a VSS
    mapping), so the hints carry the names the samples will have. A name that two messages
    publish with different conversions gets no hint (the encoder then finds one itself).
    """
    hints: dict[str, LinearScale] = {}
    conflicting: set[str] = set()
    for message in database.messages:
        names = (signal_names or {}).get(message.name, {})
        for signal in message.signals:
            hint = _linear(signal)
            name = names.get(signal.name, signal.name)
            if hint is None or name in conflicting:
                continue
            if hints.setdefault(name, hint) != hint:
                conflicting.add(name)
                del hints[name]
    return hints


def load_scale_hints(paths: Iterable[str]) -> dict[str, LinearScale]:
    """Hints from the DBC files at ``paths`` (``package:`` paths allowed), merged.

    A name the files scale differently gets no hint. Raises ``edge_agent.can.dbc.DbcError``
    when a file cannot be read or holds no usable message (it is loaded leniently).
    """
    merged: dict[str, LinearScale] = {}
    conflicting: set[str] = set()
    for path in paths:
        for name, hint in dbc_scales(load_database(resolve_data_path(path)).database).items():
            if name in conflicting:
                continue
            if merged.setdefault(name, hint) != hint:
                conflicting.add(name)
                del merged[name]
    return merged


def _linear(signal: Any) -> LinearScale | None:
    conversion = signal.conversion
    scale, offset = conversion.scale, conversion.offset
    if scale == 1 and offset == 0:
        return None
    return LinearScale(float(scale), float(offset))


def dbc_units(database: Database) -> dict[str, str]:
    """The unit of every signal that has one, by DBC signal name (for the signal catalogue).

    A name two messages give different units gets none.
    """
    units: dict[str, str] = {}
    conflicting: set[str] = set()
    for message in database.messages:
        for signal in message.signals:
            unit = signal.unit or ""
            if not unit or signal.name in conflicting:
                continue
            if units.setdefault(signal.name, unit) != unit:
                conflicting.add(signal.name)
                del units[signal.name]
    return units


def load_unit_hints(paths: Iterable[str]) -> dict[str, str]:
    """Units of the signals in the DBC files at ``paths``, merged (conflicts get none)."""
    merged: dict[str, str] = {}
    conflicting: set[str] = set()
    for path in paths:
        for name, unit in dbc_units(load_database(resolve_data_path(path)).database).items():
            if name in conflicting:
                continue
            if merged.setdefault(name, unit) != unit:
                conflicting.add(name)
                del merged[name]
    return merged
