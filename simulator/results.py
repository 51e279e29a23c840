"""What a scenario run measured: collision, impact speed, minimum time to collision, braking."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edge_agent.simulator.scenario import Scenario
from edge_agent.simulator.vehicle import AEB_ACTIVE_MPS2, KMH, VehicleState


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """The outcome of one run. ``impact_speed_kmh`` and ``min_ttc_s`` are ``None`` when moot.

    ``min_ttc_s`` is the minimum over the run of gap / closing speed while the object was ahead,
    in the ego's lane and closing (0 after a collision). ``brake_activations`` counts the times
    the AEB started braking; ``false_activation`` is any of them in a scenario without obstacle.
    """

    name: str
    collision: bool
    impact_speed_kmh: float | None
    min_ttc_s: float | None
    brake_activations: int
    false_activation: bool
    expects_obstacle: bool
    duration_s: float
    min_gap_m: float | None
    final_speed_kmh: float
    max_deceleration_mps2: float
    brake_frames: int
    warnings: int
    frames_sent: int
    send_errors: int

    def as_dict(self) -> dict[str, object]:
        """The result as JSON-ready values (floats rounded to what is meaningful)."""
        values = asdict(self)
        for key, value in values.items():
            if isinstance(value, float):
                values[key] = round(value, 3)
        return values


class RunMetrics:
    """Accumulates a run's metrics, one physics tick at a time."""

    def __init__(self) -> None:
        self.min_ttc_s: float | None = None
        self.min_gap_m: float | None = None
        self.brake_activations = 0
        self.max_deceleration_mps2 = 0.0
        self._braking = False

    def observe(self, state: VehicleState, brake_request_mps2: float) -> None:
        """Take the state after a tick and the brake request that was applied in it."""
        ttc = state.time_to_collision_s
        if ttc is not None and (self.min_ttc_s is None or ttc < self.min_ttc_s):
            self.min_ttc_s = ttc
        if state.in_same_lane and state.gap_m > 0:
            self.min_gap_m = (
                state.gap_m if self.min_gap_m is None else min(self.min_gap_m, state.gap_m)
            )
        braking = brake_request_mps2 > AEB_ACTIVE_MPS2
        if braking and not self._braking:
            self.brake_activations += 1
        self._braking = braking
        self.max_deceleration_mps2 = max(self.max_deceleration_mps2, state.brake.deceleration_mps2)

    def result(
        self,
        scenario: Scenario,
        state: VehicleState,
        *,
        brake_frames: int = 0,
        warnings: int = 0,
        frames_sent: int = 0,
        send_errors: int = 0,
    ) -> ScenarioResult:
        """The result of ``scenario`` ending in ``state``."""
        collision = state.collision
        min_ttc = self.min_ttc_s
        if min_ttc is not None and not math.isfinite(min_ttc):
            min_ttc = None
        return ScenarioResult(
            name=scenario.name,
            collision=collision is not None,
            impact_speed_kmh=None if collision is None else collision.impact_speed_kmh,
            min_ttc_s=min_ttc,
            brake_activations=self.brake_activations,
            false_activation=self.brake_activations > 0 and not scenario.expects_obstacle,
            expects_obstacle=scenario.expects_obstacle,
            duration_s=state.time_s,
            min_gap_m=self.min_gap_m,
            final_speed_kmh=state.ego.speed_mps / KMH,
            max_deceleration_mps2=self.max_deceleration_mps2,
            brake_frames=brake_frames,
            warnings=warnings,
            frames_sent=frames_sent,
            send_errors=send_errors,
        )
