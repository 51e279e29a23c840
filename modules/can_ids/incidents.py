"""Incidents: repeated alerts of one kind folded into one thing an operator handles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_agent.modules.can_ids.alerts import Alert, AlertKind, Severity
from edge_agent.modules.can_ids.profile import id_text

QUIET_S = 10.0
"""An incident closes after this long without an alert of its kind."""
MAX_IDS_LISTED = 32


@dataclass(slots=True)
class Incident:
    """Alerts of one kind close together in time: when it began, how many, which ids."""

    number: int
    kind: AlertKind
    severity: Severity
    first_t: float
    last_t: float
    alerts: int = 1
    can_ids: set[int] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (ids capped at ``MAX_IDS_LISTED``)."""
        return {
            "incident": self.number,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "first_t": round(self.first_t, 6),
            "last_t": round(self.last_t, 6),
            "alerts": self.alerts,
            "can_ids": [id_text(key) for key in sorted(self.can_ids)[:MAX_IDS_LISTED]],
        }


class IncidentTracker:
    """Folds alerts into incidents: one per kind while alerts keep coming within ``quiet_s``."""

    def __init__(self, quiet_s: float = QUIET_S) -> None:
        self.quiet_s = quiet_s
        self.open: dict[AlertKind, Incident] = {}
        self.count = 0

    def add(self, alert: Alert) -> Incident | None:
        """Count ``alert``; return the incident if the alert opened a new one, else None."""
        current = self.open.get(alert.kind)
        if current is not None and 0 <= alert.t - current.last_t <= self.quiet_s:
            current.alerts += 1
            current.last_t = alert.t
            if alert.can_id is not None and len(current.can_ids) < MAX_IDS_LISTED:
                current.can_ids.add(alert.can_id)
            return None
        self.count += 1
        incident = Incident(self.count, alert.kind, alert.severity, alert.t, alert.t)
        if alert.can_id is not None:
            incident.can_ids.add(alert.can_id)
        self.open[alert.kind] = incident
        return incident

    def closing(self, now: float) -> list[Incident]:
        """Incidents quiet for ``quiet_s`` at ``now``: removed from the open ones and returned."""
        done = [i for i in self.open.values() if now - i.last_t > self.quiet_s or now < i.last_t]
        for incident in done:
            del self.open[incident.kind]
        return done
