"""What became of received frames, counted one way wherever frames are decoded.

The CAN reader's per-bus counters (:class:`~edge_agent.can.ingest.BusCounters`), a log replay
(:class:`~edge_agent.can.replay.ReplayResult`) and the uplink estimator's frame counts all
extend :class:`DecodeTally`, so a frame that one of them calls undecodable, the others call
undecodable too. The outcomes are those of :class:`~edge_agent.can.decode.DecodeOutcome`
(docs/can.md has the table).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import can

from edge_agent.can.decode import DecodeOutcome
from edge_agent.can.types import DecodedMessage

MAX_DISTINCT_UNKNOWN_IDS = 4096
"""Distinct unknown ids remembered: a flood of random extended ids must not grow memory."""


@dataclass(slots=True)
class DecodeTally:
    """Frames counted by decode outcome.

    ``decode_failures`` counts every frame of a known id that did not decode, short frames
    included; ``short_frames`` says how many of those were shorter than their DBC message.
    ``unknown_id_set`` holds the distinct unknown ids (the first
    ``MAX_DISTINCT_UNKNOWN_IDS`` of them).
    """

    frames: int = 0
    decoded: int = 0
    unknown_ids: int = 0
    error_frames: int = 0
    remote_frames: int = 0
    decode_failures: int = 0
    short_frames: int = 0
    unknown_id_set: set[int] = field(default_factory=set)

    def count(self, frame: can.Message, outcome: DecodedMessage | DecodeOutcome) -> None:
        """Count ``frame``, which the decoder turned into ``outcome``."""
        self.frames += 1
        if isinstance(outcome, DecodedMessage):
            self.decoded += 1
        else:
            self.count_undecoded(frame.arbitration_id, outcome)

    def count_undecoded(self, arbitration_id: int, outcome: DecodeOutcome) -> None:
        """Count why a frame with ``arbitration_id`` did not decode (``frames`` not included).

        For a hot path that counts ``frames`` and ``decoded`` itself, inline.
        """
        if outcome is DecodeOutcome.UNKNOWN_ID:
            self.unknown_ids += 1
            if len(self.unknown_id_set) < MAX_DISTINCT_UNKNOWN_IDS:
                self.unknown_id_set.add(arbitration_id)
        elif outcome is DecodeOutcome.ERROR_FRAME:
            self.error_frames += 1
        elif outcome is DecodeOutcome.REMOTE_FRAME:
            self.remote_frames += 1
        else:
            self.decode_failures += 1
            if outcome is DecodeOutcome.SHORT_FRAME:
                self.short_frames += 1

    def tally(self) -> dict[str, int]:
        """The counts as a JSON-ready dict; the distinct unknown ids as their number."""
        return {
            "frames": self.frames,
            "decoded": self.decoded,
            "unknown_ids": self.unknown_ids,
            "distinct_unknown_ids": len(self.unknown_id_set),
            "error_frames": self.error_frames,
            "remote_frames": self.remote_frames,
            "decode_failures": self.decode_failures,
            "short_frames": self.short_frames,
        }
