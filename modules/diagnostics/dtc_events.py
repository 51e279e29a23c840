"""DTC change events: what the module publishes when a code appears, changes or clears.

One owner for the event's shape, whichever way the codes were read: :func:`uds_dtc_changes`
compares UDS status bytes, :func:`obd_dtc_changes` the OBD modes that report each code.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from edge_agent.modules.diagnostics.codes import status_names
from edge_agent.modules.diagnostics.dtc_table import describe

S = TypeVar("S")


def dtc_changes(
    source: str,
    ecu: str,
    before: Mapping[str, S],
    after: Mapping[str, S],
    state: Callable[[S | None], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Events for codes that appeared, changed state or cleared between two reads.

    ``before`` and ``after`` map each code to its state as ``source`` reports it;
    ``state`` gives the event's fields for a code's new state (``None`` once cleared).
    Codes come in sorted order.
    """
    events: list[dict[str, Any]] = []
    for code in sorted(set(before) | set(after)):
        old, new = before.get(code), after.get(code)
        if old == new:
            continue
        change = "appeared" if old is None else "cleared" if new is None else "changed"
        events.append(
            {
                "kind": "dtc",
                "source": source,
                "ecu": ecu,
                "code": code,
                "change": change,
                **state(new),
                "description": describe(code),
            }
        )
    return events


def _uds_state(status: int | None) -> dict[str, Any]:
    status = status if status is not None else 0
    return {"status": status, "status_bits": status_names(status)}


def _obd_state(modes: Collection[str] | None) -> dict[str, Any]:
    return {"obd_status": sorted(modes or ())}


def uds_dtc_changes(
    ecu: str, before: Mapping[str, int], after: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Events for UDS codes that appeared, changed status or cleared between two reads."""
    return dtc_changes("uds", ecu, before, after, _uds_state)


def obd_dtc_changes(
    ecu: str, before: Mapping[str, Collection[str]], after: Mapping[str, Collection[str]]
) -> list[dict[str, Any]]:
    """Events for OBD codes that appeared, changed modes or cleared between two reads."""
    return dtc_changes("obd", ecu, before, after, _obd_state)
