"""Requests the supervisor answers on the bus: status, desired configuration."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from edge_agent.bus import Message
from edge_agent.config.desired import parse_desired, store_last_good, validate_desired
from edge_agent.config.errors import ConfigError
from edge_agent.supervisor.reconfigure import apply_config

if TYPE_CHECKING:
    from edge_agent.supervisor.supervisor import Supervisor

STATUS_TOPIC = "agent/status"
APPLY_DESIRED_TOPIC = "agent/config/apply"


def serve_agent_requests(supervisor: Supervisor) -> None:
    """Serve ``agent/status`` (the health snapshot) and ``agent/config/apply``.

    ``agent/config/apply`` takes a desired state (JSON bytes or a dict
    ``{"version", "modules"}``) and replies ``{"accepted": bool, "version", "errors": [...],
    "report": {...}}``. A rejected desired state changes nothing.
    """

    async def status(_: Message) -> dict[str, Any]:
        return supervisor.snapshot()

    async def apply(message: Message) -> dict[str, Any]:
        version: Any = None
        try:
            document = parse_desired(message.payload)
            version = document.get("version")
            new = validate_desired(supervisor.config, document)
        except ConfigError as error:
            return {"accepted": False, "version": version, "errors": error.lines()}
        report = await apply_config(supervisor, new)
        supervisor.desired_version = version
        store_last_good(supervisor.settings.state_dir, document)
        return {
            "accepted": True,
            "version": version,
            "errors": [],
            "report": dataclasses.asdict(report),
        }

    supervisor.bus.serve(STATUS_TOPIC, status, name="agent.status")
    supervisor.bus.serve(APPLY_DESIRED_TOPIC, apply, name="agent.config.apply")
