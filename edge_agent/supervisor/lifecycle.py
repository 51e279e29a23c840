"""The module state machine: which lifecycle transitions are legal."""

from __future__ import annotations

from edge_agent.module_api import ModuleState
from edge_agent.transitions import IllegalTransition, require_transition

__all__ = ["TERMINAL", "TRANSITIONS", "IllegalTransition", "check_transition"]

S = ModuleState

TRANSITIONS: dict[ModuleState, frozenset[ModuleState]] = {
    S.LOADING: frozenset({S.STARTING, S.FAILED, S.STOPPED}),
    S.STARTING: frozenset({S.RUNNING, S.BACKING_OFF, S.FAILED, S.BROKEN, S.STOPPING}),
    S.RUNNING: frozenset({S.BACKING_OFF, S.FAILED, S.BROKEN, S.STOPPING, S.STOPPED}),
    # FAILED: while backing off, a dependency the module needs became failed or broken.
    S.BACKING_OFF: frozenset({S.STARTING, S.FAILED, S.STOPPING, S.STOPPED}),
    S.FAILED: frozenset({S.STARTING, S.STOPPING, S.STOPPED}),
    S.BROKEN: frozenset({S.STARTING, S.STOPPING, S.STOPPED}),
    S.STOPPING: frozenset({S.STOPPED}),
    S.STOPPED: frozenset({S.STARTING}),
}

TERMINAL = frozenset({S.FAILED, S.BROKEN, S.STOPPED})


def check_transition(current: ModuleState, target: ModuleState) -> None:
    """Raise IllegalTransition unless ``current -> target`` is in :data:`TRANSITIONS`."""
    require_transition(TRANSITIONS, current, target, machine="lifecycle")
