"""The cloud link's states: an enum and a transition table, checked on every change."""

from __future__ import annotations

import itertools

import pytest

from edge_agent.modules.cloud_link.link_state import (
    TRANSITIONS,
    LinkState,
    LinkStatus,
    check_transition,
)
from edge_agent.transitions import IllegalTransition

PAIRS = list(itertools.product(LinkState, repeat=2))


def test_every_state_has_a_transition_entry() -> None:
    assert set(TRANSITIONS) == set(LinkState)


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_only_the_tabled_moves_are_accepted(pair: tuple[LinkState, LinkState]) -> None:
    current, target = pair
    if target in TRANSITIONS[current]:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition, match=f"{current} -> {target} is not a cloud link"):
            check_transition(current, target)


def test_a_session_never_starts_while_one_is_up() -> None:
    assert LinkState.ONLINE not in TRANSITIONS[LinkState.ONLINE]
    assert LinkState.OFFLINE in TRANSITIONS[LinkState.OFFLINE]  # another failed attempt


def test_the_status_shows_plain_strings() -> None:
    shown = LinkStatus(state=LinkState.ONLINE, since=1.0, reason="connected").as_dict()
    assert shown["state"] == "online"
    assert type(shown["state"]) is str
