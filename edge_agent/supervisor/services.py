"""Requests the supervisor answers on the bus: status, desired state, signed config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge_agent.agent_topics import APPLY_DESIRED_TOPIC, APPLY_SIGNED_TOPIC, STATUS_TOPIC
from edge_agent.bus import Message

if TYPE_CHECKING:
    from edge_agent.supervisor.supervisor import Supervisor


def serve_agent_requests(supervisor: Supervisor) -> None:
    """Serve ``agent/status``, ``agent/config/apply`` and ``agent/config/signed``.

    ``agent/status`` replies the health snapshot. ``agent/config/apply`` takes a desired
    state (JSON bytes or a dict ``{"version", "modules"}``, tunable settings only) and
    ``agent/config/signed`` a signed config document the OTA module verified; both reply
    ``{"accepted": bool, "version", "errors": [...], "report": {...}}``. A refused change
    changes nothing (see :mod:`edge_agent.supervisor.changes`).
    """

    async def status(_: Message) -> dict[str, Any]:
        return supervisor.snapshot()

    async def apply(message: Message) -> dict[str, Any]:
        return await supervisor.changes.apply_desired(message.payload)

    async def apply_signed(message: Message) -> dict[str, Any]:
        return await supervisor.changes.apply_signed(message.payload)

    supervisor.bus.serve(STATUS_TOPIC, status, name="agent.status")
    supervisor.bus.serve(APPLY_DESIRED_TOPIC, apply, name="agent.config.apply")
    supervisor.bus.serve(APPLY_SIGNED_TOPIC, apply_signed, name="agent.config.signed")
