"""The link's state machine: its states, the legal moves between them, and what is shown.

``offline`` -> ``online`` when a session is established (CONNACK, status published,
subscriptions in place); ``online`` -> ``offline`` when it ends, whatever the reason;
``offline`` -> ``offline`` when another attempt fails (the reason changes). A session never
starts while one is up, so ``online`` -> ``online`` is a bug and raises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from edge_agent.transitions import require_transition


class LinkState(enum.StrEnum):
    """Whether the vehicle has a session with the broker right now."""

    OFFLINE = "offline"
    ONLINE = "online"


TRANSITIONS: dict[LinkState, frozenset[LinkState]] = {
    LinkState.OFFLINE: frozenset({LinkState.OFFLINE, LinkState.ONLINE}),
    LinkState.ONLINE: frozenset({LinkState.OFFLINE}),
}


def check_transition(current: LinkState, target: LinkState) -> None:
    """Raise IllegalTransition unless ``current -> target`` is in :data:`TRANSITIONS`."""
    require_transition(TRANSITIONS, current, target, machine="cloud link")


@dataclass
class LinkStatus:
    """The link as the bus, health and the reported state show it."""

    state: LinkState = LinkState.OFFLINE
    since: float = 0.0
    reason: str = "not connected yet"
    attempt: int = 0
    connects: int = 0
    session_present: bool | None = None
    probes: int = 0
    probe_reconnects: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "state": self.state.value,
            "since": self.since,
            "reason": self.reason,
            "attempt": self.attempt,
            "connects": self.connects,
            "session_present": self.session_present,
            "probes": self.probes,
            "probe_reconnects": self.probe_reconnects,
        }
