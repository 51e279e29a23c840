"""The module state machine accepts exactly the transitions in TRANSITIONS."""

from __future__ import annotations

import itertools

import pytest

from edge_agent.module_api import ModuleState
from edge_agent.supervisor import TRANSITIONS, IllegalTransition, check_transition
from edge_agent.supervisor.lifecycle import TERMINAL

S = ModuleState
ALL_PAIRS = list(itertools.product(ModuleState, repeat=2))
LEGAL = [(a, b) for a, b in ALL_PAIRS if b in TRANSITIONS[a]]
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if b not in TRANSITIONS[a]]


def _id(pair: tuple[ModuleState, ModuleState]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def test_every_state_has_a_transition_entry() -> None:
    assert set(TRANSITIONS) == set(ModuleState)


@pytest.mark.parametrize("pair", LEGAL, ids=[_id(p) for p in LEGAL])
def test_legal_transitions_are_accepted(pair: tuple[ModuleState, ModuleState]) -> None:
    check_transition(*pair)


@pytest.mark.parametrize("pair", ILLEGAL, ids=[_id(p) for p in ILLEGAL])
def test_illegal_transitions_raise(pair: tuple[ModuleState, ModuleState]) -> None:
    current, target = pair
    with pytest.raises(IllegalTransition, match=f"{current.value} -> {target.value}"):
        check_transition(current, target)


def test_the_tables_split_every_pair() -> None:
    assert len(LEGAL) + len(ILLEGAL) == len(ModuleState) ** 2
    assert LEGAL
    assert ILLEGAL


@pytest.mark.parametrize(
    "path",
    [
        # start, run, stop on shutdown
        [S.LOADING, S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED],
        # crash, back off, restart, crash too often: broken
        [S.LOADING, S.STARTING, S.RUNNING, S.BACKING_OFF, S.STARTING, S.BROKEN],
        # start fails with restart=never
        [S.LOADING, S.STARTING, S.FAILED],
        # a dependency is broken before the first start, or while backing off
        [S.LOADING, S.FAILED],
        [S.LOADING, S.STARTING, S.BACKING_OFF, S.FAILED],
        # shutdown while waiting to retry
        [S.LOADING, S.STARTING, S.BACKING_OFF, S.STOPPED],
        # run() returned with restart=on-failure; a later restart by hand
        [S.LOADING, S.STARTING, S.RUNNING, S.STOPPED, S.STARTING],
    ],
    ids=[
        "normal",
        "crash-loop",
        "never",
        "dependency-broken",
        "dependency-broken-later",
        "stop-in-backoff",
        "run-returned",
    ],
)
def test_the_paths_the_runner_takes_are_legal(path: list[ModuleState]) -> None:
    for current, target in itertools.pairwise(path):
        check_transition(current, target)


def test_nothing_leaves_stopping_except_to_stopped() -> None:
    assert TRANSITIONS[S.STOPPING] == {S.STOPPED}


def test_terminal_states_are_the_ones_that_stop_trying() -> None:
    assert {S.FAILED, S.BROKEN, S.STOPPED} == TERMINAL
    assert S.RUNNING not in TERMINAL
