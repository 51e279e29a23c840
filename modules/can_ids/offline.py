"""``edge-agent ids train`` and ``ids scan`` without the command line: logs in, results out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import can

from edge_agent.can.logs import LogStats, open_log
from edge_agent.modules.can_ids.alerts import Alert
from edge_agent.modules.can_ids.dbc_rules import DbcRules, apply_ranges
from edge_agent.modules.can_ids.detect import Detector
from edge_agent.modules.can_ids.incidents import IncidentTracker
from edge_agent.modules.can_ids.learn import ProfileLearner
from edge_agent.modules.can_ids.profile import EXTENDED_FLAG, BusProfile

Frame = tuple[float, int, bytes, bool]
"""(time in seconds, id key as in the profile, payload, is an error frame)."""


def frame_of(message: can.Message) -> Frame:
    """A python-can message as the detectors take it."""
    key = message.arbitration_id
    if message.is_extended_id and not message.is_error_frame:
        key |= EXTENDED_FLAG
    return (float(message.timestamp), key, bytes(message.data or b""), message.is_error_frame)


def log_frames(path: str | Path, stats: LogStats) -> Iterator[Frame]:
    """The frames of a recorded log (LogFormatError if it cannot be read at all)."""
    for message in open_log(path, stats):
        yield frame_of(message)


def train(
    frames: Iterable[Frame], source: str = "", rules: DbcRules | None = None
) -> tuple[BusProfile, int]:
    """Learn a profile from clean ``frames``; also return how many gaps were stepped over.

    ``rules`` (from a DBC) name counter and checksum fields and add signal ranges.
    """
    learner = ProfileLearner(source, rules.hints if rules is not None else None)
    observe = learner.observe
    for t, key, data, error in frames:
        observe(t, key, data, error=error)
    profile = learner.profile()
    if rules is not None:
        apply_ranges(profile, rules)
    return profile, learner.gaps


@dataclass
class ScanResult:
    """What scanning a recording found (``as_dict`` is the ``ids scan --json`` shape)."""

    frames: int = 0
    alerts: list[Alert] = field(default_factory=list)
    incidents: int = 0
    suppressed: int = 0
    gaps: int = 0
    degraded: str = ""

    def as_dict(self) -> dict[str, Any]:
        """``{"frames", "alerts_total", "alerts": [...], "incidents"}`` plus bookkeeping."""
        values: dict[str, Any] = {
            "frames": self.frames,
            "alerts_total": len(self.alerts),
            "alerts": [alert.as_dict() for alert in self.alerts],
            "incidents": self.incidents,
            "suppressed": self.suppressed,
            "gaps": self.gaps,
        }
        if self.degraded:
            values["degraded"] = self.degraded
        return values


def scan(frames: Iterable[Frame], profile: BusProfile, *, evidence: bool = False) -> ScanResult:
    """Run the detectors over ``frames``; every alert, folded into incidents too.

    Alerts keep the frames before them (``evidence``) only on request.
    """
    detector = Detector(profile)
    incidents = IncidentTracker()
    observe = detector.observe
    result = ScanResult(degraded=detector.degraded)
    for t, key, data, error in frames:
        raised = observe(t, key, data, error=error)
        if raised:
            for alert in raised:
                if not evidence:
                    alert.evidence = {}  # offline output lists alerts, evidence is on request
                result.alerts.append(alert)
                incidents.add(alert)
    result.frames = detector.frames
    result.incidents = incidents.count
    result.suppressed = detector.suppressed
    result.gaps = detector.gaps
    return result
