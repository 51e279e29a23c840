"""What a scenario run measured: collision, impact speed, minimum time to collision, braking."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edge_agent.simulator.scenario import Scenario
from edge_agent.simulator.vehicle import AEB_ACTIVE_MPS2, KMH, VehicleState

PARTIAL_STAGE = 2
FULL_STAGE = 3
"""AebStage values of the brake request (see the DBC)."""


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """The outcome of one run. ``impact_speed_kmh`` and ``min_ttc_s`` are ``None`` when moot.

    ``min_ttc_s`` is the minimum over the run of gap / closing speed while an object was ahead,
    in the ego's lane and closing (0 after a collision). ``brake_activations`` counts the times
    the AEB started braking; ``false_activation`` is any of them in a scenario without obstacle.
    ``first_partial_brake_s`` and ``first_full_brake_s`` are when the brake requests first
    carried the partial (or full) and the full stage, in seconds from the start.
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
    first_partial_brake_s: float | None = None
    first_full_brake_s: float | None = None

    def as_dict(self) -> dict[str, object]:
        """The result as JSON-ready values (floats rounded to what is meaningful)."""
        return rounded(asdict(self))


def rounded(values: dict[str, object]) -> dict[str, object]:
    """``values`` with every float rounded to 3 decimals (mm, ms, 0.001 km/h: all that means)."""
    return {key: round(v, 3) if isinstance(v, float) else v for key, v in values.items()}


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
        gap = state.in_lane_gap_m
        if gap is not None:
            self.min_gap_m = gap if self.min_gap_m is None else min(self.min_gap_m, gap)
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
        first_stage_s: dict[int, float] | None = None,
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
            first_partial_brake_s=(first_stage_s or {}).get(PARTIAL_STAGE),
            first_full_brake_s=(first_stage_s or {}).get(FULL_STAGE),
        )
