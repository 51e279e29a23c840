"""Replaying a recorded log through the DBC decoder, as fast as possible or at a scaled speed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import can

from edge_agent.can.decode import DecodeOutcome, FrameDecoder
from edge_agent.can.logs import LogStats
from edge_agent.can.tally import DecodeTally
from edge_agent.can.types import DecodedMessage

# Outcomes counted in ``decode_failures``, of which the result keeps a few examples.
UNDECODABLE = (DecodeOutcome.SHORT_FRAME, DecodeOutcome.DECODE_FAILED)


@dataclass(slots=True)
class ReplayResult(DecodeTally):
    """Counts of one replay: the decode tally, malformed log records, time taken, examples.

    ``errors`` is malformed records + decode failures + error frames.
    """

    malformed: int = 0
    duration_s: float = 0.0
    examples: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        """Everything that went wrong: malformed records, undecodable frames, error frames."""
        return self.malformed + self.decode_failures + self.error_frames

    @property
    def frames_per_s(self) -> float:
        """Frames handled per second of wall time."""
        return self.frames / self.duration_s if self.duration_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The JSON object of ``edge-agent replay --json``."""
        return {
            "frames": self.frames,
            "decoded": self.decoded,
            "unknown_ids": self.unknown_ids,
            "errors": self.errors,
            "duration_s": round(self.duration_s, 6),
            "frames_per_s": round(self.frames_per_s, 1),
        }


def replay(
    frames: Iterable[can.Message],
    decoder: FrameDecoder,
    stats: LogStats,
    *,
    speed: float = 0.0,
    on_decoded: Callable[[DecodedMessage], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayResult:
    """Decode every frame of ``frames``; with ``speed`` > 0, keep ``speed`` x recorded pace.

    ``speed`` 0 (or below) means as fast as possible. Timestamps that go backwards are not
    waited for. ``stats`` is the log reader's (its malformed count ends up in the result).
    """
    result = ResultCounter(decoder, on_decoded)
    started = clock()
    first_stamp: float | None = None
    for frame in frames:
        if speed > 0:
            if first_stamp is None:
                first_stamp = frame.timestamp
            due = started + (frame.timestamp - first_stamp) / speed
            wait = due - clock()
            if wait > 0:
                sleep(wait)
        result.take(frame)
    outcome = result.result
    outcome.duration_s = clock() - started
    outcome.malformed = stats.malformed
    outcome.examples = [*stats.examples, *outcome.examples]
    return outcome


class ResultCounter:
    """Decodes frames one by one into a :class:`ReplayResult`."""

    def __init__(
        self, decoder: FrameDecoder, on_decoded: Callable[[DecodedMessage], None] | None = None
    ) -> None:
        self.decoder = decoder
        self.on_decoded = on_decoded
        self.result = ReplayResult()

    def take(self, frame: can.Message) -> None:
        """Decode ``frame`` and count what became of it."""
        result = self.result
        decoded = self.decoder.decode(frame)
        result.count(frame, decoded)
        if isinstance(decoded, DecodedMessage):
            if self.on_decoded is not None:
                self.on_decoded(decoded)
        elif decoded in UNDECODABLE and len(result.examples) < 5:
            result.examples.append(
                f"id 0x{frame.arbitration_id:X} with {len(frame.data)} bytes: {decoded.value}"
            )
