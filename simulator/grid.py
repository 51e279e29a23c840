"""Test grids: the Euro NCAP car-to-car grid and the look-alike zoo, cell by cell.

``euro-ncap``: CCRs 10 to 80 km/h and CCRm 30 to 80 km/h in 5 km/h steps at overlaps 100, 75,
50, -50 and -75 %, and CCRb 12 and 40 m apart at 2 and 6 m/s² (50 km/h, full overlap): 134
cells. ``lookalikes``: every look-alike scenario, and ``standard-drive`` with ten noise seeds.
``small-overlaps``: CCRs 20 to 80 km/h at 40 down to 10 % overlap, where the in-path decision
runs out (docs/fast-path.md).
A cell runs in lock-step (:func:`run_cell`, simulated time, the fast path's real code) or in
real time against a running agent (:mod:`edge_agent.simulator.suite`); :func:`disagreements`
says where two runs of the same cell differ by more than the tick-level timing allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

from edge_agent.modules.fast_path.config import FastPathConfig
from edge_agent.simulator.lockstep import run_lockstep
from edge_agent.simulator.lookalikes import lookalikes
from edge_agent.simulator.results import ScenarioResult, rounded
from edge_agent.simulator.scenario import Scenario
from edge_agent.simulator.scenarios import get_scenario
from edge_agent.simulator.suite import SuiteResult
from edge_agent.simulator.targets import target_for
from edge_agent.simulator.vehicle import VEHICLE_WIDTH_M

OVERLAPS = (100, 75, 50, -50, -75)
CCRS_SPEEDS = tuple(range(10, 85, 5))
CCRM_SPEEDS = tuple(range(30, 85, 5))
CCRB_CELLS = ((12, 2), (12, 6), (40, 2), (40, 6))
DRIVE_SEEDS = tuple(range(1, 11))
"""Noise seeds of the ten standard drives of the look-alike grid."""

FIRST_BRAKE_TOLERANCE_S = 0.1
IMPACT_TOLERANCE_KMH = 3.0
GAP_TOLERANCE_M = 0.5
"""How far a real-time run may stray from lock-step and still agree (a few 5 ms ticks)."""


@dataclass(frozen=True, slots=True)
class GridCell:
    """One cell: the scenario name, its family and where it sits in the grid."""

    name: str
    family: str
    speed_kmh: int | None = None
    overlap_pct: int | None = None
    seed: int = 0

    @property
    def label(self) -> str:
        """The name, with the seed when it is not the default."""
        return self.name if self.seed == 0 else f"{self.name}@seed{self.seed}"

    def scenario(self) -> Scenario:
        """The scenario this cell runs."""
        return get_scenario(self.name)


def _overlap_name(overlap: int) -> str:
    return "" if overlap == 100 else f"-o{overlap}"


def euro_ncap_cells() -> list[GridCell]:
    """The Euro NCAP car-to-car rear grid (see the module docstring)."""
    cells = [
        GridCell(f"ccrs-{speed}{_overlap_name(overlap)}", "ccrs", speed, overlap)
        for overlap in OVERLAPS
        for speed in CCRS_SPEEDS
    ]
    cells += [
        GridCell(f"ccrm-{speed}{_overlap_name(overlap)}", "ccrm", speed, overlap)
        for overlap in OVERLAPS
        for speed in CCRM_SPEEDS
    ]
    cells += [GridCell(f"ccrb-{gap}-{decel}", "ccrb", 50, 100) for gap, decel in CCRB_CELLS]
    return cells


def lookalike_cells() -> list[GridCell]:
    """The look-alike zoo, then the standard drive once per seed of :data:`DRIVE_SEEDS`."""
    cells = [GridCell(scenario.name, "lookalike") for scenario in lookalikes()]
    cells += [GridCell("standard-drive", "drive", seed=seed) for seed in DRIVE_SEEDS]
    return cells


SMALL_OVERLAPS = (40, 30, 25, 20, 15, 10)
SMALL_OVERLAP_SPEEDS = tuple(range(20, 90, 10))


def small_overlap_cells() -> list[GridCell]:
    """CCRs at overlaps below the protocol's 50 %: where the in-path decision runs out."""
    return [
        GridCell(f"ccrs-{speed}-o{overlap}", "ccrs", speed, overlap)
        for overlap in SMALL_OVERLAPS
        for speed in SMALL_OVERLAP_SPEEDS
    ]


GRIDS: dict[str, Callable[[], list[GridCell]]] = {
    "euro-ncap": euro_ncap_cells,
    "lookalikes": lookalike_cells,
    "small-overlaps": small_overlap_cells,
}
"""The grids ``edge-agent-sim suite --grid`` knows, by name."""


def cell_for(name: str, seed: int = 0) -> GridCell:
    """A cell for any scenario name (``--only``): car-to-car names get their speed and overlap."""
    scenario = get_scenario(name)
    family = name.split("-", maxsplit=1)[0]
    if family not in ("ccrs", "ccrm", "ccrb"):
        return GridCell(scenario.name, scenario.category.value, seed=seed)
    script = scenario.script
    lateral = script.lead_lateral_m.at(0.0)
    overlap = 100 - round(abs(lateral) / VEHICLE_WIDTH_M * 100)
    overlap = -overlap if lateral > 0 else overlap
    speed = round(script.ego_speed_kmh.at(0.0))
    return GridCell(scenario.name, family, speed, overlap, seed)


def sample(cells: list[GridCell], count: int) -> list[GridCell]:
    """``count`` cells spread evenly over ``cells`` (first and last included)."""
    if count >= len(cells):
        return list(cells)
    if count <= 1:
        return cells[:count]
    step = (len(cells) - 1) / (count - 1)
    return [cells[round(index * step)] for index in range(count)]


@dataclass(frozen=True, slots=True)
class CellResult:
    """What one cell's run gave, in the report's terms.

    ``approach_speed_kmh`` is the closing speed the run can reach (against the target's slowest
    speed); ``speed_reduction_kmh`` how much of it was gone at impact (all of it when the
    collision was avoided). ``score`` is the Euro NCAP-style share of the approach speed
    removed (1 when avoided, 0 without braking). The three are ``None`` in cells without an
    obstacle, where only activations count.
    """

    name: str
    family: str
    speed_kmh: int | None
    overlap_pct: int | None
    seed: int
    collision: bool
    impact_speed_kmh: float | None
    approach_speed_kmh: float | None
    speed_reduction_kmh: float | None
    first_partial_brake_s: float | None
    first_full_brake_s: float | None
    brake_activations: int
    min_gap_m: float | None
    min_ttc_s: float | None
    duration_s: float
    target: str
    target_met: bool
    misses: list[str]
    score: float | None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready values."""
        return rounded(asdict(self))


def cell_result(
    cell: GridCell,
    scenario: Scenario,
    result: ScenarioResult | SuiteResult,
    *,
    extra_misses: list[str] | None = None,
) -> CellResult:
    """Judge ``result`` of ``cell`` against its target and score it.

    ``extra_misses``: misses already judged (a real-time run's, which include its target's).
    """
    target = target_for(scenario)
    collision = bool(result.collision)
    if extra_misses is None:
        misses = target.misses(collision, result.impact_speed_kmh, result.brake_activations)
    else:
        misses = list(extra_misses)
    script = scenario.script
    impact = result.impact_speed_kmh if collision else None
    approach = reduction = score = None
    if scenario.expects_obstacle:
        # The closing speed the run can reach: against the target's slowest scripted speed.
        approach = max(script.ego_speed_kmh.at(0.0) - min(script.lead_speed_kmh.values), 0.0)
        reduction = approach - (impact or 0.0)
        braked = result.brake_activations > 0 and approach > 0
        score = min(max(reduction / approach, 0.0), 1.0) if braked else 0.0
    return CellResult(
        name=cell.name,
        family=cell.family,
        speed_kmh=cell.speed_kmh,
        overlap_pct=cell.overlap_pct,
        seed=cell.seed,
        collision=collision,
        impact_speed_kmh=impact,
        approach_speed_kmh=approach,
        speed_reduction_kmh=reduction,
        first_partial_brake_s=result.first_partial_brake_s,
        first_full_brake_s=result.first_full_brake_s,
        brake_activations=result.brake_activations,
        min_gap_m=result.min_gap_m,
        min_ttc_s=result.min_ttc_s,
        duration_s=result.duration_s,
        target=target.description,
        target_met=not misses,
        misses=misses,
        score=score,
    )


def run_cell(cell: GridCell, config: FastPathConfig | None = None) -> CellResult:
    """Run ``cell`` in lock-step (simulated time, the fast path's real decision code)."""
    scenario = cell.scenario()
    return cell_result(cell, scenario, run_lockstep(scenario, seed=cell.seed, config=config))


def disagreements(lockstep: CellResult, real_time: CellResult) -> list[str]:
    """Where a real-time run of a cell differs from its lock-step run beyond the tolerances."""
    found: list[str] = []
    if lockstep.collision != real_time.collision:
        found.append(
            f"collision {real_time.collision} in real time, {lockstep.collision} lock-step"
        )
    if lockstep.brake_activations != real_time.brake_activations:
        found.append(
            f"{real_time.brake_activations} activations in real time, "
            f"{lockstep.brake_activations} lock-step"
        )
    lock, real = lockstep, real_time
    pairs = [
        ("impact speed", lock.impact_speed_kmh, real.impact_speed_kmh, IMPACT_TOLERANCE_KMH),
        ("first partial brake", lock.first_partial_brake_s, real.first_partial_brake_s,
         FIRST_BRAKE_TOLERANCE_S),
        ("first full brake", lock.first_full_brake_s, real.first_full_brake_s,
         FIRST_BRAKE_TOLERANCE_S),
        ("minimum gap", lock.min_gap_m, real.min_gap_m, GAP_TOLERANCE_M),
    ]  # fmt: skip
    for what, expected, got, tolerance in pairs:
        if (expected is None) != (got is None):
            found.append(f"{what} {got} in real time, {expected} lock-step")
        elif (
            expected is not None
            and got is not None
            and not math.isclose(expected, got, abs_tol=tolerance)
        ):
            found.append(f"{what} {got:.3f} in real time, {expected:.3f} lock-step")
    return found
