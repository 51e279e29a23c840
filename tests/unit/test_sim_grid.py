"""Grid bookkeeping: sampling, scoring, the report and when two runs of a cell agree."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.simulator.grid import (
    CellResult,
    GridCell,
    cell_for,
    cell_result,
    disagreements,
    sample,
)
from edge_agent.simulator.grid_cli import RealTimeGrid
from edge_agent.simulator.grid_report import GridReport
from edge_agent.simulator.lockstep import run_lockstep
from edge_agent.simulator.results import ScenarioResult
from edge_agent.simulator.scenarios import get_scenario
from edge_agent.simulator.suite import SuiteResult
from edge_agent.simulator.targets import target_for


def _outcome(collision: bool, impact: float | None, activations: int = 1) -> ScenarioResult:
    return ScenarioResult(
        name="x",
        collision=collision,
        impact_speed_kmh=impact,
        min_ttc_s=None,
        brake_activations=activations,
        false_activation=False,
        expects_obstacle=True,
        duration_s=8.0,
        min_gap_m=None if collision else 3.0,
        final_speed_kmh=0.0,
        max_deceleration_mps2=9.0,
        brake_frames=10,
        warnings=1,
        frames_sent=100,
        send_errors=0,
        first_partial_brake_s=4.0,
        first_full_brake_s=4.5,
    )


def _cell(name: str, collision: bool, impact: float | None, activations: int = 1) -> CellResult:
    return cell_result(cell_for(name), get_scenario(name), _outcome(collision, impact, activations))


@given(cells=st.integers(1, 200), count=st.integers(1, 250))
def test_a_sample_spreads_over_the_grid(cells: int, count: int) -> None:
    grid = [GridCell(f"c{i}", "x") for i in range(cells)]
    chosen = sample(grid, count)
    assert len(chosen) == min(cells, count)
    assert len(set(chosen)) == len(chosen)
    assert chosen[0] == grid[0]
    if count > 1:
        assert chosen[-1] == grid[-1]


def test_cells_score_the_share_of_the_approach_speed_removed() -> None:
    assert _cell("ccrs-50", False, None).score == 1.0
    reduced = _cell("ccrs-80", True, 20.0)
    assert reduced.score == pytest.approx(0.75)
    assert reduced.speed_reduction_kmh == pytest.approx(60.0)
    assert reduced.target_met  # 20 km/h is at most 30 % of 80
    assert _cell("ccrs-80", True, 30.0, activations=1).misses == [
        "impact at 30.0 km/h, more than 24.0 km/h"
    ]
    assert _cell("ccrs-50", True, 50.0, activations=0).score == 0.0
    moving = _cell("ccrm-60-o-50", True, 10.0)
    assert moving.approach_speed_kmh == pytest.approx(40.0)
    assert moving.score == pytest.approx(0.75)
    braking = _cell("ccrb-12-6", False, None)
    assert braking.approach_speed_kmh == pytest.approx(50.0)


def test_the_report_scores_families_and_counts_false_activations() -> None:
    cells = [
        _cell("ccrs-50", False, None),
        _cell("ccrs-80", True, 20.0),
        _cell("ccrm-60", False, None),
        cell_result(
            GridCell("standard-drive", "drive", seed=3),
            get_scenario("standard-drive"),
            dataclasses.replace(_outcome(False, None, activations=2), duration_s=360.0),
        ),
    ]
    report = GridReport("test", cells)
    assert report.family_scores() == {"ccrs": pytest.approx(87.5), "ccrm": 100.0}
    assert report.score_pct() == pytest.approx(93.75)
    assert report.false_activations() == 2
    assert report.false_activations_per_hour() == pytest.approx(20.0)
    summary = report.summary()
    assert summary["targets_met"] == 3
    assert summary["collisions"] == 1
    table = report.markdown()
    assert "| `ccrs-80` | yes | 20.0 | 60.0 |" in table
    assert "| `standard-drive (seed 3)` |" in table
    assert "MISSED: false activation: braked 2 time(s) without an obstacle" in table


def test_runs_agree_within_a_few_ticks_and_say_where_not() -> None:
    lock = _cell("ccrs-80", True, 20.0)
    assert disagreements(lock, lock) == []
    close = dataclasses.replace(lock, impact_speed_kmh=21.5, first_partial_brake_s=4.04)
    assert disagreements(lock, close) == []
    far = dataclasses.replace(lock, first_full_brake_s=4.8, brake_activations=2)
    found = disagreements(lock, far)
    assert "2 activations in real time, 1 lock-step" in found
    assert "first full brake 4.800 in real time, 4.500 lock-step" in found
    avoided = dataclasses.replace(lock, collision=False, impact_speed_kmh=None)
    assert disagreements(lock, avoided)[0] == "collision False in real time, True lock-step"


def test_cells_for_names_know_their_place_in_the_grid() -> None:
    assert cell_for("ccrs-35-o-50") == GridCell("ccrs-35-o-50", "ccrs", 35, -50)
    assert cell_for("ccrm-055-o75") == GridCell("ccrm-55-o75", "ccrm", 55, 75)
    assert cell_for("ccrb-12-6") == GridCell("ccrb-12-6", "ccrb", 50, 100)
    assert cell_for("lookalike-gantry", seed=2) == GridCell("lookalike-gantry", "lookalike", seed=2)


def _as_suite_result(result: ScenarioResult) -> SuiteResult:
    """A run as the real-time suite reports it (the same figures, judged the same way)."""
    target = target_for(get_scenario(result.name))
    misses = target.judge(result)
    return SuiteResult(
        name=result.name,
        collision=result.collision,
        impact_speed_kmh=result.impact_speed_kmh,
        min_ttc_s=result.min_ttc_s,
        brake_activations=result.brake_activations,
        false_activation=result.false_activation,
        max_decision_latency_ms=1.0,
        category="aeb",
        target=target.description,
        target_met=not misses,
        misses=misses,
        p50_decision_latency_ms=0.5,
        latency_samples=100,
        min_gap_m=result.min_gap_m,
        brake_frames=result.brake_frames,
        duration_s=result.duration_s,
        max_pacing_lag_ms=0.0,
        first_partial_brake_s=result.first_partial_brake_s,
        first_full_brake_s=result.first_full_brake_s,
    )


def test_a_real_time_run_that_disagrees_misses_in_the_output_and_in_the_report() -> None:
    args = argparse.Namespace(grid=None, only="ccrs-10", sample=None, seed=0, report=None)
    grid = RealTimeGrid(args)
    (cell,) = grid.cells
    same = _as_suite_result(run_lockstep(cell.scenario()))
    assert same.target_met
    judged, found = grid.judge(cell, same)
    assert (judged, found) == (same, [])
    twice = dataclasses.replace(same, brake_activations=same.brake_activations + 1)
    judged, found = grid.judge(cell, twice)
    assert found == ["2 activations in real time, 1 lock-step"]
    assert not judged.target_met
    assert judged.misses == ["disagrees with lock-step: 2 activations in real time, 1 lock-step"]
    agreeing, disagreeing = grid.results
    assert agreeing.target_met
    assert agreeing.misses == []
    assert not disagreeing.target_met
    assert disagreeing.misses == judged.misses
    report = GridReport("only", grid.results, mode="real time")
    assert report.summary()["targets_met"] == 1
    assert "| 2 | " in report.markdown().splitlines()[-1]
    assert "| MISSED: disagrees with lock-step: 2 activations" in report.markdown()


def test_a_disagreeing_run_the_machine_stalled_runs_again_a_bounded_number_of_times(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from edge_agent.simulator.grid_cli import STALL_MS, STALL_RERUNS
    from edge_agent.simulator.suite_cli import _judged_cell

    args = argparse.Namespace(grid=None, only="ccrs-10", sample=None, seed=0, report=None)
    grid = RealTimeGrid(args)
    (cell,) = grid.cells
    same = _as_suite_result(run_lockstep(cell.scenario()))
    twice = dataclasses.replace(same, brake_activations=same.brake_activations + 1)
    stalled = dataclasses.replace(twice, max_decision_latency_ms=STALL_MS + 100)
    # A stalled disagreement is not judged; a disagreement at normal latency is.
    assert grid.judge(cell, stalled, may_rerun=True) is None
    assert grid.results == []
    assert grid.judge(cell, twice, may_rerun=True) is not None
    # The rerun's result counts: a stall, then an agreeing run.
    runs = iter([same])
    assert _judged_cell(grid, cell, stalled, lambda: next(runs)) == same
    assert "running the cell again" in capsys.readouterr().err
    # A machine that stalls every run: judged (missed) after STALL_RERUNS more runs.
    calls: list[int] = []

    def again() -> SuiteResult:
        calls.append(1)
        return stalled

    judged = _judged_cell(grid, cell, stalled, again)
    assert len(calls) == STALL_RERUNS
    assert not judged.target_met
    assert [r.target_met for r in grid.results] == [False, True, False]


def test_seed_reaches_the_grid_cells_but_not_the_seeded_drives() -> None:
    from edge_agent.simulator.grid_cli import selected_cells

    def args(grid: str, seed: int) -> argparse.Namespace:
        return argparse.Namespace(grid=grid, only=None, sample=None, seed=seed, report=None)

    assert {cell.seed for cell in selected_cells(args("euro-ncap", 0))} == {0}
    assert {cell.seed for cell in selected_cells(args("euro-ncap", 7))} == {7}
    zoo = selected_cells(args("lookalikes", 7))
    drives = [cell.seed for cell in zoo if cell.name == "standard-drive"]
    assert drives == list(range(1, 11))
    assert {cell.seed for cell in zoo if cell.name != "standard-drive"} == {7}
