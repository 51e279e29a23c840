"""Asking whether the vehicle is parked, without the runtime knowing how a vehicle says so.

A module that knows the vehicle's state (the OTA module, with its parked guard on the decoded
speed) answers requests on :data:`PARKED_TOPIC` with ``{"parked": bool, "reason": str}``.
The supervisor asks before it stops or restarts a module declared
``restart_only_when_parked`` for a config change. No answer counts as not parked: the
guard only opens on evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge_agent.bus import Bus, Message, NoResponder, RequestFailed, RequestTimeout

PARKED_TOPIC = "agent/vehicle/parked"
ASK_TIMEOUT_S = 2.0


async def vehicle_parked(bus: Bus, timeout_s: float = ASK_TIMEOUT_S) -> tuple[bool, str]:
    """(parked, why not) as the vehicle-state guard on ``bus`` sees it now."""
    try:
        reply = await bus.request(PARKED_TOPIC, None, timeout=timeout_s, sender="agent")
    except NoResponder:
        return False, f"vehicle state unknown (no guard answers {PARKED_TOPIC})"
    except (RequestTimeout, RequestFailed) as error:
        return False, f"vehicle state unknown (the guard failed: {error})"
    payload = reply.payload if isinstance(reply.payload, dict) else {}
    parked = payload.get("parked") is True
    return parked, "" if parked else str(payload.get("reason") or "vehicle not parked")


def serve_parked(bus: Bus, verdict: Callable[[], tuple[bool, str]]) -> Callable[[], None]:
    """Answer :data:`PARKED_TOPIC` with ``verdict()``; returns the callable that stops it."""

    async def answer(_: Message) -> dict[str, Any]:
        parked, reason = verdict()
        return {"parked": parked, "reason": reason}

    return bus.serve(PARKED_TOPIC, answer, name="vehicle.parked")
