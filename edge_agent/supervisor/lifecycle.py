"""The module state machine: which lifecycle transitions are legal."""

from __future__ import annotations

from edge_agent.module_api import ModuleState

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


class IllegalTransition(RuntimeError):
    """A module was asked to move between two states the lifecycle does not connect."""


def check_transition(current: ModuleState, target: ModuleState) -> None:
    """Raise IllegalTransition unless ``current -> target`` is in :data:`TRANSITIONS`."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"{current.value} -> {target.value} is not a lifecycle transition")
