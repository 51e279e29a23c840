"""Evidence around an alert: the frames before it (the detector's ring) and the frames after.

An alert that opens an incident is held back until ``AFTER_FRAMES`` more frames have come or
``AFTER_S`` of bus time has passed since it (whichever first), so the operator sees how the
bus went on, not only how it led up to the alert. At most ``MAX_HELD`` alerts wait; one more
releases the oldest early, with the frames it has (bounded, stated in docs/ids.md). When the
bus goes quiet, the module releases what is held after ``QUIET_RELEASE_S`` of wall time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge_agent.modules.can_ids.alerts import Alert
from edge_agent.modules.can_ids.profile import id_text

AFTER_FRAMES = 16
AFTER_S = 0.1
MAX_HELD = 32
QUIET_RELEASE_S = 0.2


def frame_evidence(t: float, key: int, data: bytes) -> list[object]:
    """One frame as evidence: ``[t, "0x0B0", "hex payload"]``."""
    return [round(t, 6), id_text(key), data.hex()]


@dataclass(slots=True)
class _Held:
    alert: Alert
    tag: Any
    until: float
    after: list[list[object]] = field(default_factory=list)


class EvidenceHold:
    """Holds alerts until the frames after them are in; ``feed`` returns those now complete.

    Each released alert's evidence is ``{"frames": [...], "raised_at": index, "after": n}``:
    the frames in time order, the index of the frame that raised it, how many came after.
    ``tag`` travels with the alert (the module's incident).
    """

    def __init__(self, after_frames: int = AFTER_FRAMES, after_s: float = AFTER_S) -> None:
        self.after_frames = after_frames
        self.after_s = after_s
        self._held: list[_Held] = []
        self.released_early = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, alert: Alert, tag: Any) -> list[tuple[Alert, Any]]:
        """Hold ``alert`` (its evidence has the frames before it); return any pushed out early."""
        pushed: list[tuple[Alert, Any]] = []
        if len(self._held) >= MAX_HELD:
            self.released_early += 1
            pushed.append(self._release(self._held.pop(0)))
        self._held.append(_Held(alert, tag, alert.t + self.after_s))
        return pushed

    def feed(self, t: float, key: int, data: bytes) -> list[tuple[Alert, Any]]:
        """One more frame for every held alert; the alerts whose evidence is now complete."""
        if not self._held:
            return []
        done: list[tuple[Alert, Any]] = []
        waiting: list[_Held] = []
        for held in self._held:
            if t > held.until:
                done.append(self._release(held))
                continue
            held.after.append(frame_evidence(t, key, data))
            if len(held.after) >= self.after_frames:
                done.append(self._release(held))
            else:
                waiting.append(held)
        self._held = waiting
        return done

    def release_all(self) -> list[tuple[Alert, Any]]:
        """Every held alert with the frames it has (the bus went quiet, or stopping)."""
        done = [self._release(held) for held in self._held]
        self._held = []
        return done

    @staticmethod
    def _release(held: _Held) -> tuple[Alert, Any]:
        alert = held.alert
        before = list(alert.evidence.get("frames", []))
        alert.evidence = {
            "frames": before + held.after,
            "raised_at": len(before) - 1,
            "after": len(held.after),
        }
        return alert, held.tag
