"""What each scenario must achieve with a working AEB: the suite's pass/fail rules.

The rules follow the Euro NCAP car-to-car rear tests, with this project's fixed physics
(9 m/s2, 200 ms actuator lag, a driver who never brakes):

* a stationary target up to ``AVOID_STATIONARY_UP_TO_KMH``: no collision;
* a stationary target above that: the impact speed is at most ``MAX_IMPACT_SHARE`` (30 %)
  of the approach speed (a collision is allowed);
* a moving or braking target, at any speed: no collision;
* no obstacle (benign traffic, look-alikes, faults without obstacle, long drives, replayed
  drive logs): no brake activation at all (no false activation) and no collision.

Every overlap counts the same: a target offset to either side has the same target.

Every scenario with an obstacle also needs at least one brake activation. The rules are a
pure function of the scenario and its result, so the deterministic policy-in-the-loop test
and the suite against the running agent judge with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.simulator.results import ScenarioResult
from edge_agent.simulator.scenario import Scenario
from edge_agent.simulator.vehicle import KMH

AVOID_STATIONARY_UP_TO_KMH = 60.0
"""Stationary targets up to this approach speed must be avoided entirely."""
MAX_IMPACT_SHARE = 0.3
"""Above it, the impact speed may be at most this share of the approach speed."""


@dataclass(frozen=True, slots=True)
class Target:
    """The target of one scenario: a readable statement and the checks behind it.

    ``max_impact_kmh`` is ``None`` when any collision misses the target; otherwise a collision
    at up to that speed is allowed.
    """

    description: str
    expects_obstacle: bool
    max_impact_kmh: float | None

    def misses(
        self, collision: bool, impact_speed_kmh: float | None, activations: int
    ) -> list[str]:
        """Why a run with these outcomes misses the target (empty when it meets it)."""
        found: list[str] = []
        if collision:
            impact = impact_speed_kmh or 0.0
            if self.max_impact_kmh is None:
                found.append(f"collision at {impact:.1f} km/h")
            elif impact > self.max_impact_kmh:
                found.append(
                    f"impact at {impact:.1f} km/h, more than {self.max_impact_kmh:.1f} km/h"
                )
        if self.expects_obstacle and activations == 0:
            found.append("the AEB never braked")
        if not self.expects_obstacle and activations > 0:
            found.append(f"false activation: braked {activations} time(s) without an obstacle")
        return found

    def judge(self, result: ScenarioResult) -> list[str]:
        """Why ``result`` misses the target (empty when it meets it)."""
        return self.misses(result.collision, result.impact_speed_kmh, result.brake_activations)


NO_OBSTACLE = Target(
    description="no brake activation, no collision", expects_obstacle=False, max_impact_kmh=None
)
"""The target of a run without an obstacle, and of a replayed drive log."""


def target_for(scenario: Scenario) -> Target:
    """The target ``scenario`` must meet (see the module docstring)."""
    if not scenario.expects_obstacle:
        return NO_OBSTACLE
    start = scenario.initial_state()
    approach_kmh = start.closing_speed_mps / KMH
    stationary = start.lead.speed_mps == 0.0 and scenario.script.lead_speed_kmh.at(0.0) == 0.0
    if stationary and start.ego.speed_mps / KMH > AVOID_STATIONARY_UP_TO_KMH:
        allowed = approach_kmh * MAX_IMPACT_SHARE
        return Target(
            description=f"brake; impact speed at most {allowed:.1f} km/h "
            f"({MAX_IMPACT_SHARE:.0%} of {approach_kmh:.0f})",
            expects_obstacle=True,
            max_impact_kmh=allowed,
        )
    return Target(description="brake; no collision", expects_obstacle=True, max_impact_kmh=None)
