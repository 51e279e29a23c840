"""The front radar: what it reports about the lead object, with noise, range limit and dropouts."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from edge_agent.simulator.profiles import TimeWindows
from edge_agent.simulator.vehicle import VEHICLE_WIDTH_M, VehicleState

RADAR_RANGE_M = 150.0
DISTANCE_NOISE_M = 0.2
NO_OBJECT_DISTANCE_M = 250.0
"""What the radar reports as distance when it tracks no object."""


@dataclass(frozen=True, slots=True)
class RadarConfig:
    """The radar's fixed physics and the faults a scenario injects into it.

    Frames come at the RadarObject cycle time of the DBC (50 Hz). ``dropouts`` are windows in
    which the radar sends no frames at all; ``drop_probability`` loses single frames at random.
    """

    range_m: float = RADAR_RANGE_M
    distance_noise_m: float = DISTANCE_NOISE_M
    relative_speed_noise_mps: float = 0.05
    lateral_noise_m: float = 0.05
    field_of_view_half_deg: float = 30.0
    dropouts: TimeWindows = field(default_factory=TimeWindows)
    drop_probability: float = 0.0


@dataclass(frozen=True, slots=True)
class RadarReading:
    """One radar frame's content (before encoding)."""

    distance_m: float
    relative_speed_mps: float
    lateral_m: float
    valid: bool
    in_path: bool


NO_OBJECT = RadarReading(NO_OBJECT_DISTANCE_M, 0.0, 0.0, valid=False, in_path=False)


class Radar:
    """Measures the lead object in a :class:`VehicleState`; the noise comes from ``rng``."""

    def __init__(self, config: RadarConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng

    def sees(self, state: VehicleState) -> bool:
        """Whether the object is ahead, within range and inside the field of view."""
        gap = state.gap_m
        if gap <= 0.0 or gap > self.config.range_m:
            return False
        bearing = math.degrees(math.atan2(abs(state.lead.lateral_m), gap))
        return bearing <= self.config.field_of_view_half_deg

    def measure(self, state: VehicleState) -> RadarReading | None:
        """The frame the radar sends now, or ``None`` when it sends nothing (dropout)."""
        config = self.config
        if config.dropouts.contains(state.time_s):
            return None
        if config.drop_probability and self._rng.random() < config.drop_probability:
            return None
        if state.collision is not None or not self.sees(state):
            return NO_OBJECT
        gauss = self._rng.gauss
        distance = state.gap_m + gauss(0.0, config.distance_noise_m)
        lateral = state.lead.lateral_m + gauss(0.0, config.lateral_noise_m)
        return RadarReading(
            distance_m=min(max(distance, 0.0), NO_OBJECT_DISTANCE_M),
            relative_speed_mps=-state.closing_speed_mps
            + gauss(0.0, config.relative_speed_noise_mps),
            lateral_m=lateral,
            valid=True,
            in_path=abs(lateral) < VEHICLE_WIDTH_M,
        )
