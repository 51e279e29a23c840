"""State machines as transition tables: which moves between the states of an enum are legal.

Public API. The supervisor keeps module lifecycles this way (``edge_agent.supervisor.lifecycle``);
a module keeps its own states the same way (the cloud link's link state, for one): a table
``{state: frozenset of next states}`` next to the enum, and every change checked against it,
so an impossible move is a loud bug instead of a quietly wrong health report.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

E = TypeVar("E", bound=enum.Enum)


class IllegalTransition(RuntimeError):
    """Something was asked to move between two states its table does not connect."""


def require_transition(
    table: Mapping[E, frozenset[E]], current: E, target: E, *, machine: str
) -> None:
    """Raise IllegalTransition unless ``table`` allows ``current -> target``.

    ``machine`` names the state machine in the message (e.g. "lifecycle", "cloud link").
    """
    if target not in table[current]:
        raise IllegalTransition(f"{current.value} -> {target.value} is not a {machine} transition")
