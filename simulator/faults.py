"""Bus faults the simulator injects: floods, garbage frames and bus-off."""

from __future__ import annotations

import dataclasses
import enum
import random
from dataclasses import dataclass, field

import can

from edge_agent.simulator.profiles import TimeWindows

FLOOD_ID = 0x6F0
"""Default id of flood frames: unknown to the vehicle DBC, so they cost a lookup, not a decode."""
UNKNOWN_IDS = (0x051, 0x2A7, 0x5E1, 0x7FE)
"""Ids the garbage generator uses that the vehicle DBC does not define."""


class Garbage(enum.Enum):
    """Kinds of malformed traffic the garbage generator mixes."""

    WRONG_DLC = "wrong-dlc"
    UNKNOWN_ID = "unknown-id"
    ERROR_FRAME = "error"
    REMOTE_FRAME = "remote"


ALL_GARBAGE = tuple(Garbage)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Which bus faults a run injects and when.

    ``flood_fps`` extra frames per second of id ``flood_id`` (inside ``flood_windows``, or all run
    long when there are none); ``garbage_fps`` malformed frames per second of ``garbage_kinds``;
    inside ``bus_off`` windows the vehicle sends nothing but ``bus_off_error_fps`` error frames.
    """

    flood_fps: float = 0.0
    flood_id: int = FLOOD_ID
    flood_windows: TimeWindows = field(default_factory=TimeWindows)
    garbage_fps: float = 0.0
    garbage_kinds: tuple[Garbage, ...] = ALL_GARBAGE
    bus_off: TimeWindows = field(default_factory=TimeWindows)
    bus_off_error_fps: float = 0.0

    def combined(self, other: FaultPlan) -> FaultPlan:
        """The plan with every fault ``other`` sets (non-default) added or overriding."""
        defaults = FaultPlan()
        changes = {
            f.name: getattr(other, f.name)
            for f in dataclasses.fields(other)
            if getattr(other, f.name) != getattr(defaults, f.name)
        }
        if "bus_off" in changes:
            changes["bus_off"] = self.bus_off.merged(other.bus_off.spans)
        return dataclasses.replace(self, **changes)


class _Rate:
    """Turns a rate in frames per second into whole frames per tick, carrying the remainder."""

    def __init__(self) -> None:
        self._carry = 0.0

    def take(self, per_second: float, dt: float) -> int:
        self._carry += per_second * dt
        count = int(self._carry + 1e-9)  # not one frame short through rounding
        self._carry -= count
        return count


class FaultInjector:
    """Produces the fault frames of one tick and says whether the vehicle is bus-off."""

    def __init__(self, plan: FaultPlan, known_ids: frozenset[int], rng: random.Random) -> None:
        self.plan = plan
        self._known_ids = sorted(known_ids)
        self._rng = rng
        self._flood, self._garbage, self._errors = _Rate(), _Rate(), _Rate()
        self._garbage_index = 0

    def bus_off(self, time_s: float) -> bool:
        """Whether the vehicle's nodes are bus-off (send no normal frames) at ``time_s``."""
        return self.plan.bus_off.contains(time_s)

    def frames(self, time_s: float, dt: float) -> list[can.Message]:
        """The fault frames to send in the tick ending at ``time_s``."""
        plan, frames = self.plan, []
        if self.bus_off(time_s):
            count = self._errors.take(plan.bus_off_error_fps, dt)
            frames += [can.Message(is_error_frame=True, data=bytes(8)) for _ in range(count)]
            return frames
        flooding = not plan.flood_windows or plan.flood_windows.contains(time_s)
        if plan.flood_fps and flooding:
            for _ in range(self._flood.take(plan.flood_fps, dt)):
                payload = self._rng.randbytes(8)
                frames.append(
                    can.Message(arbitration_id=plan.flood_id, data=payload, is_extended_id=False)
                )
        if plan.garbage_fps and plan.garbage_kinds:
            for _ in range(self._garbage.take(plan.garbage_fps, dt)):
                kind = plan.garbage_kinds[self._garbage_index % len(plan.garbage_kinds)]
                self._garbage_index += 1
                frames.append(self.garbage_frame(kind))
        return frames

    def garbage_frame(self, kind: Garbage) -> can.Message:
        """One malformed frame of ``kind``."""
        rng = self._rng
        if kind is Garbage.WRONG_DLC:
            length = rng.choice((0, 1, 3, 5, 7))
            frame_id = rng.choice(self._known_ids)
            return can.Message(
                arbitration_id=frame_id,
                data=rng.randbytes(length),
                dlc=length,
                is_extended_id=False,
            )
        if kind is Garbage.UNKNOWN_ID:
            return can.Message(
                arbitration_id=rng.choice(UNKNOWN_IDS), data=rng.randbytes(8), is_extended_id=False
            )
        if kind is Garbage.ERROR_FRAME:
            return can.Message(is_error_frame=True, data=bytes(8))
        return can.Message(
            arbitration_id=rng.choice(self._known_ids),
            is_remote_frame=True,
            dlc=8,
            is_extended_id=False,
        )


def parse_garbage_kinds(text: str) -> tuple[Garbage, ...]:
    """Parse a comma-separated list of garbage kinds (``all`` for every kind)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return ALL_GARBAGE
    known = {kind.value: kind for kind in Garbage}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(
            f"unknown garbage kind {', '.join(unknown) or repr(text)} "
            f"(known: all, {', '.join(known)})"
        )
    return tuple(dict.fromkeys(known[name] for name in names))
