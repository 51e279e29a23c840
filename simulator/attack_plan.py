"""Attacks in a live run: the ``attack-*`` scenarios send a drive with an attacker on the bus.

:class:`LiveAttack` changes each tick's frames the way :mod:`edge_agent.simulator.attacks`
changes a recording, inside the plan's time windows, and keeps the labels (first changed
frame, end, target id) so a run can be scored like a mutated log.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import can

from edge_agent.simulator.attacks import (
    DURATION_S,
    FLOOD_FPS,
    FLOOD_ID,
    FUZZ_FPS,
    AttackKind,
    AttackLabel,
)
from edge_agent.simulator.profiles import TimeWindows

EGO_MOTION_ID = 0x100
"""The default target: EgoMotion, 10 ms, with a rolling counter (simulator DBC)."""
EGO_MOTION_PERIOD_S = 0.010
MAX_PENDING = 1024
"""Injected frames waiting for their moment (more are not queued: the attack is bounded)."""


@dataclass(frozen=True, slots=True)
class AttackPlan:
    """One attack kind in ``windows`` (seconds into the run) on ``target`` (every ``period_s``)."""

    kind: AttackKind
    windows: TimeWindows
    target: int = EGO_MOTION_ID
    period_s: float = EGO_MOTION_PERIOD_S

    @classmethod
    def at(cls, kind: AttackKind, *starts: float) -> AttackPlan:
        """Windows of the kind's usual length starting at ``starts``."""
        length = DURATION_S[kind]
        return cls(kind, TimeWindows.of(*((start, start + length) for start in starts)))


@dataclass
class _Rate:
    carry: float = 0.0

    def take(self, per_second: float, dt: float) -> int:
        self.carry += per_second * dt
        count = int(self.carry + 1e-9)
        self.carry -= count
        return count


@dataclass
class LiveAttack:
    """Applies an :class:`AttackPlan` to the frames of each tick; ``labels`` say what it did."""

    plan: AttackPlan
    rng: random.Random
    labels: list[AttackLabel] = field(default_factory=list)
    _pending: list[tuple[float, can.Message]] = field(default_factory=list)
    _history: deque[bytes] = field(default_factory=lambda: deque(maxlen=16))
    _rate: _Rate = field(default_factory=_Rate)
    _window: tuple[float, float] | None = None
    _impostor_due: float = 0.0
    _last_payload: bytes = bytes(8)
    _lag: int = 3

    def frames(self, time_s: float, dt: float, frames: list[can.Message]) -> list[can.Message]:
        """The tick's frames (ending at ``time_s``) as the bus carries them under attack."""
        window = next(((s, e) for s, e in self.plan.windows.spans if s <= time_s < e), None)
        if window != self._window:
            self._window = window
            if window is not None:
                self._impostor_due = time_s + self.rng.uniform(0.0, self.plan.period_s)
                self._lag = self.rng.randint(3, 12)
        out = self._due(time_s)
        if window is None:
            for frame in frames:
                if frame.arbitration_id == self.plan.target:
                    self._history.append(bytes(frame.data))
            return frames + out
        changed = self._attack(time_s, dt, frames, out)
        if changed and (not self.labels or self.labels[-1].end_s != window[1]):
            self.labels.append(AttackLabel(self.plan.kind, time_s, window[1], self._label_id()))
        return out

    def _label_id(self) -> int | None:
        if self.plan.kind is AttackKind.FLOODING:
            return FLOOD_ID
        return None if self.plan.kind is AttackKind.FUZZING else self.plan.target

    def _due(self, time_s: float) -> list[can.Message]:
        ready = [frame for due, frame in self._pending if due <= time_s]
        self._pending = [(due, frame) for due, frame in self._pending if due > time_s]
        return ready

    def _attack(
        self, time_s: float, dt: float, frames: list[can.Message], out: list[can.Message]
    ) -> bool:
        kind, target, rng = self.plan.kind, self.plan.target, self.rng
        changed = bool(out)
        for frame in frames:
            if frame.arbitration_id != target:
                out.append(frame)
                continue
            data = bytes(frame.data)
            self._history.append(data)
            self._last_payload = data
            changed = changed or kind is not AttackKind.INJECTION
            if kind is AttackKind.INJECTION:
                out.append(frame)
                if len(self._pending) < MAX_PENDING:
                    copy = _message(target, data)
                    due = time_s + rng.uniform(0.1, 0.9) * self.plan.period_s
                    self._pending.append((due, copy))
            elif kind is AttackKind.DLC_CHANGE:
                out.append(_message(target, data[: max(0, len(data) - rng.randint(1, 4))]))
            elif kind is AttackKind.SPOOFING:
                older = self._history[-min(self._lag, len(self._history))]
                out.append(_message(target, bytes([older[0] ^ rng.randint(1, 255)]) + older[1:]))
            # suspension and masquerade: the genuine frame is not sent
        if kind is AttackKind.FLOODING:
            count = self._rate.take(FLOOD_FPS, dt)
            out += [_message(FLOOD_ID, bytes(8)) for _ in range(count)]
            changed = changed or count > 0
        elif kind is AttackKind.FUZZING:
            for _ in range(self._rate.take(FUZZ_FPS, dt)):
                payload = rng.randbytes(rng.randint(0, 8))
                out.append(_message(rng.randint(0, 0x7FF), payload))
                changed = True
        elif kind is AttackKind.MASQUERADE:
            while self._impostor_due <= time_s:
                # Another node's clock: 2 % slow; the payload is what the ECU would have sent.
                out.append(_message(target, self._last_payload))
                self._impostor_due += self.plan.period_s * 1.02
                changed = True
        return changed


def _message(frame_id: int, data: bytes) -> can.Message:
    return can.Message(arbitration_id=frame_id, data=data, is_extended_id=False)
