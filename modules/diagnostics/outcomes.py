"""What a diagnostic request can come to, counted: answers, timeouts, refusals, errors.

Every outcome on the diagnostic channel is counted in :class:`DiagCounters` (for health
details and reports); a request that got no usable answer raises :class:`DiagnosticError`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# The negative response code an ECU sends while it works on an answer ("pending").
RESPONSE_PENDING = 0x78


@dataclass
class DiagCounters:
    """What happened on the diagnostic channel, for health details and reports."""

    requests: int = 0
    answers: int = 0
    timeouts: int = 0
    pending: int = 0
    malformed: int = 0
    refused: int = 0
    transport_errors: int = 0
    stray_frames: int = 0
    foreign_answers: int = 0
    negative: Counter[str] = field(default_factory=Counter)
    silent_ecus: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "requests": self.requests,
            "answers": self.answers,
            "timeouts": self.timeouts,
            "pending": self.pending,
            "malformed": self.malformed,
            "refused": self.refused,
            "transport_errors": self.transport_errors,
            "stray_frames": self.stray_frames,
            "foreign_answers": self.foreign_answers,
            "negative": dict(self.negative),
            "silent_ecus": sorted(self.silent_ecus),
        }


class DiagnosticError(Exception):
    """A request got no usable answer; the message says why (timeout, NRC, malformed)."""
