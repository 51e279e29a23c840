"""What the IDS reports: alert kinds, severities and the alert record itself."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from edge_agent.modules.can_ids.profile import id_text


class AlertKind(enum.StrEnum):
    """What an alert says happened on the bus (docs/ids.md lists each with its test)."""

    INJECTION = "injection"  # a known periodic id arrived much sooner than its period allows
    FLOODING = "flooding"  # an unknown id above every known id's priority, repeated fast
    BUS_LOAD = "bus-load"  # more frames per window than the profile ever saw
    UNKNOWN_ID = "unknown-id"  # an id never seen in clean traffic (fuzzing, a new sender)
    PAYLOAD_BITS = "payload-bits"  # bits that never moved in clean traffic moved
    DLC_CHANGE = "dlc-change"  # a known id with a length it never had
    COUNTER = "counter"  # a rolling counter that skipped or repeated
    CHECKSUM = "checksum"  # a checksum byte that does not match the learned algorithm
    SIGNAL_RANGE = "signal-range"  # a DBC signal outside its DBC range
    SUSPENSION = "suspension"  # a periodic id went silent
    MASQUERADE = "masquerade"  # a periodic id's timing changed owner (another sender clock)
    ERROR_FRAMES = "error-frames"  # more error frames per window than the profile allows


class Severity(enum.StrEnum):
    """How urgent an alert is for the operator."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


SEVERITY = {
    AlertKind.INJECTION: Severity.HIGH,
    AlertKind.FLOODING: Severity.HIGH,
    AlertKind.MASQUERADE: Severity.HIGH,
    AlertKind.BUS_LOAD: Severity.MEDIUM,
    AlertKind.UNKNOWN_ID: Severity.MEDIUM,
    AlertKind.PAYLOAD_BITS: Severity.MEDIUM,
    AlertKind.DLC_CHANGE: Severity.MEDIUM,
    AlertKind.COUNTER: Severity.MEDIUM,
    AlertKind.CHECKSUM: Severity.MEDIUM,
    AlertKind.SIGNAL_RANGE: Severity.MEDIUM,
    AlertKind.SUSPENSION: Severity.MEDIUM,
    AlertKind.ERROR_FRAMES: Severity.LOW,
}


@dataclass(slots=True)
class Alert:
    """One detection: when (frame time, seconds), what, which id, how bad, and the evidence."""

    t: float
    kind: AlertKind
    can_id: int | None
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        """The kind's severity."""
        return SEVERITY[self.kind]

    def as_dict(self, *, evidence: bool = False) -> dict[str, Any]:
        """The alert as JSON-ready data (the ``ids scan --json`` shape; evidence on request)."""
        values: dict[str, Any] = {
            "t": round(self.t, 6),
            "kind": self.kind.value,
            "can_id": None if self.can_id is None else id_text(self.can_id),
            "severity": self.severity.value,
            "detail": self.detail,
        }
        if evidence:
            values["evidence"] = self.evidence
        return values
