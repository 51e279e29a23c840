"""The front radar: the objects it reports, with noise, range, field of view and dropouts.

Every cycle the radar reports up to ``max_objects`` objects, nearest first, each in its own
RadarObject frame with a track id that stays the same while the object stays in view. An
object is seen when it is ahead, within range, inside the horizontal field of view and, for
structures over the road, inside the vertical one; a car directly behind another is hidden by
it. Positions are in the ego's frame: on a curve the road ahead bends away from the ego's
axis, so a car in the next lane can sit straight ahead of the bumper (see :func:`ego_frame`).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field

from edge_agent.simulator.profiles import TimeWindows
from edge_agent.simulator.vehicle import VEHICLE_WIDTH_M, Lead, VehicleState

RADAR_RANGE_M = 150.0
DISTANCE_NOISE_M = 0.2
NO_OBJECT_DISTANCE_M = 250.0
"""What the radar reports as distance when it tracks no object."""
TRACK_IDS = 16
"""Track ids 0..15 (the ObjectId signal's range); a freed id goes to the back of the queue."""
MOUNT_HEIGHT_M = 0.5
CURVE_STEP_M = 5.0
"""Integration step along a curved road when placing objects in the ego's frame."""


@dataclass(frozen=True, slots=True)
class RadarConfig:
    """The radar's fixed physics and the faults a scenario injects into it.

    Frames come at the RadarObject cycle time of the DBC (50 Hz). The lateral position's noise
    grows with range: ``lateral_noise_m`` near, plus the azimuth error
    ``azimuth_noise_deg`` at the object's distance. ``dropouts`` are windows in which the radar
    sends no frames at all; ``drop_probability`` loses whole cycles at random.
    """

    range_m: float = RADAR_RANGE_M
    distance_noise_m: float = DISTANCE_NOISE_M
    relative_speed_noise_mps: float = 0.05
    lateral_noise_m: float = 0.05
    azimuth_noise_deg: float = 0.1
    width_noise_m: float = 0.1
    field_of_view_half_deg: float = 30.0
    vertical_field_of_view_half_deg: float = 10.0
    max_objects: int = 8
    dropouts: TimeWindows = field(default_factory=TimeWindows)
    drop_probability: float = 0.0


@dataclass(frozen=True, slots=True)
class RadarReading:
    """One radar frame's content (before encoding): one object, or no object at all.

    ``in_path`` is the radar's own guess (overlap on a straight road); the fast path judges
    from its predicted path instead.
    """

    distance_m: float
    relative_speed_mps: float
    lateral_m: float
    valid: bool
    in_path: bool
    width_m: float = 0.0
    object_id: int = 0


NO_OBJECT = RadarReading(NO_OBJECT_DISTANCE_M, 0.0, 0.0, valid=False, in_path=False)


def ego_frame(state: VehicleState, thing: Lead) -> tuple[float, float]:
    """Where ``thing`` is seen from the ego: (distance ahead along the axis, lateral, left +).

    On a straight road that is its gap and lateral offset. On a curve the road ahead is placed
    from the curvature the ego will meet there at its current speed, so curve entries and exits
    ahead bend the picture as they would for a real radar.
    """
    gap = state.gap_to(thing)
    curvature = state.script.road_curvature_per_m
    if gap <= 0.0 or not any(curvature.values):
        return gap, thing.lateral_m
    speed = max(state.ego.speed_mps, 1.0)
    steps = max(1, math.ceil(gap / CURVE_STEP_M))
    length = gap / steps
    x = y = heading = 0.0
    for index in range(steps):
        middle = (index + 0.5) * length
        bend = curvature.at(state.time_s + middle / speed) * length
        x += length * math.cos(heading + bend / 2)
        y += length * math.sin(heading + bend / 2)
        heading += bend
    return x - thing.lateral_m * math.sin(heading), y + thing.lateral_m * math.cos(heading)


@dataclass(frozen=True, slots=True)
class _Seen:
    index: int
    thing: Lead
    x: float
    y: float


class Radar:
    """Measures the objects in a :class:`VehicleState`; the noise comes from ``rng``."""

    def __init__(self, config: RadarConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._free_ids: deque[int] = deque(range(TRACK_IDS))
        self._ids: dict[int, int] = {}

    def _visible(self, state: VehicleState, thing: Lead) -> tuple[float, float] | None:
        gap = state.gap_to(thing)
        if gap <= 0.0 or gap > 2 * self.config.range_m:
            return None  # behind the bumper, or far beyond range even on a tight bend
        x, y = ego_frame(state, thing)
        if x <= 0.0 or x > self.config.range_m:
            return None
        if math.degrees(math.atan2(abs(y), x)) > self.config.field_of_view_half_deg:
            return None
        if thing.clearance_m > 0.0:
            elevation = math.degrees(math.atan2(thing.clearance_m - MOUNT_HEIGHT_M, x))
            if elevation > self.config.vertical_field_of_view_half_deg:
                return None
        return x, y

    def sees(self, state: VehicleState) -> bool:
        """Whether the lead object is ahead, within range and inside the field of view."""
        return self._visible(state, state.lead) is not None

    def _in_view(self, state: VehicleState) -> list[_Seen]:
        candidates = []
        for index, thing in enumerate(state.objects):
            where = self._visible(state, thing)
            if where is not None:
                candidates.append(_Seen(index, thing, *where))
        candidates.sort(key=lambda seen: seen.x)
        shown: list[_Seen] = []
        for seen in candidates:
            if not any(_hides(nearer, seen) for nearer in shown):
                shown.append(seen)
        return shown[: self.config.max_objects]

    def _track_ids(self, shown: list[_Seen]) -> list[int]:
        """Stable ids for the objects shown; ids of objects gone go to the back of the queue."""
        current = {seen.index for seen in shown}
        for index in [index for index in self._ids if index not in current]:
            self._free_ids.append(self._ids.pop(index))
        for seen in shown:
            if seen.index not in self._ids:
                self._ids[seen.index] = self._free_ids.popleft()
        return [self._ids[seen.index] for seen in shown]

    def measure_all(self, state: VehicleState) -> tuple[RadarReading, ...] | None:
        """The frames the radar sends this cycle, nearest object first; ``None`` in a dropout.

        With no object in view it sends one frame saying so (:data:`NO_OBJECT`).
        """
        config = self.config
        if config.dropouts.contains(state.time_s):
            return None
        if config.drop_probability and self._rng.random() < config.drop_probability:
            return None
        shown = [] if state.collision is not None else self._in_view(state)
        ids = self._track_ids(shown)
        if not shown:
            return (NO_OBJECT,)
        return tuple(self._reading(state, seen, id_) for seen, id_ in zip(shown, ids, strict=True))

    def measure(self, state: VehicleState) -> RadarReading | None:
        """The nearest object's frame (or :data:`NO_OBJECT`); ``None`` in a dropout."""
        readings = self.measure_all(state)
        return None if readings is None else readings[0]

    def _reading(self, state: VehicleState, seen: _Seen, object_id: int) -> RadarReading:
        config, gauss, thing = self.config, self._rng.gauss, seen.thing
        distance = seen.x + gauss(0.0, config.distance_noise_m)
        closing = state.ego.speed_mps - thing.speed_mps
        relative = -closing + gauss(0.0, config.relative_speed_noise_mps)
        spread = math.hypot(
            config.lateral_noise_m, seen.x * math.tan(math.radians(config.azimuth_noise_deg))
        )
        lateral = seen.y + gauss(0.0, spread)
        width = max(thing.width_m + gauss(0.0, config.width_noise_m), 0.1)
        return RadarReading(
            distance_m=min(max(distance, 0.0), NO_OBJECT_DISTANCE_M),
            relative_speed_mps=relative,
            lateral_m=lateral,
            valid=True,
            in_path=abs(lateral) < (VEHICLE_WIDTH_M + width) / 2,
            width_m=width,
            object_id=object_id,
        )


def _hides(nearer: _Seen, farther: _Seen) -> bool:
    """Whether ``nearer`` covers ``farther`` entirely as the radar looks.

    Structures overhead neither hide nor are hidden.
    """
    if nearer.thing.overhead or farther.thing.overhead:
        return False

    def span(seen: _Seen) -> tuple[float, float]:
        half = seen.thing.width_m / 2
        return math.atan2(seen.y - half, seen.x), math.atan2(seen.y + half, seen.x)

    near_low, near_high = span(nearer)
    far_low, far_high = span(farther)
    return near_low <= far_low and far_high <= near_high
