"""Bus topics the agent itself serves or publishes: public API for modules.

* ``agent/health`` (published, control priority): the supervisor's health snapshot, at every
  change and every ``health_interval_s``;
* ``agent/status`` (request): replies with the same snapshot, current as of the request;
* ``agent/config/apply`` (request): takes a desired state (JSON bytes or a dict
  ``{"version", "modules"}``), validates it like the config file, applies it and replies
  ``{"accepted": bool, "version", "errors": [...], "report": {...}}``; a rejected desired
  state changes nothing.
"""

from __future__ import annotations

HEALTH_TOPIC = "agent/health"
STATUS_TOPIC = "agent/status"
APPLY_DESIRED_TOPIC = "agent/config/apply"
# A signed config target the OTA module verified (TUF) and the vehicle-state guard let through.
APPLY_SIGNED_TOPIC = "agent/config/signed"

__all__ = ["APPLY_DESIRED_TOPIC", "APPLY_SIGNED_TOPIC", "HEALTH_TOPIC", "STATUS_TOPIC"]
