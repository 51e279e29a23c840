"""``edge-agent-sim suite --grid NAME``: a whole grid, in lock-step or against the real agent.

``--lockstep`` runs every cell in simulated time with the fast path's real decision code, in
this process, waiting for nothing (no agent, no bus); it prints one line per cell and the time
the grid took. Without it the cells run in real time against a running agent, as the suite's
scenarios do; each such cell is also run in lock-step, and a cell whose two runs disagree
(collision, activations, impact speed, first brakes, minimum gap beyond a few ticks) misses
its target. ``--sample N`` takes N cells spread over the grid; ``--report DIR`` writes the
grid's JSON, Markdown table and heat map.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from edge_agent.simulator.grid import (
    GRIDS,
    CellResult,
    GridCell,
    cell_for,
    cell_result,
    disagreements,
    run_cell,
    sample,
)
from edge_agent.simulator.grid_report import GridReport, HeatMapUnavailable
from edge_agent.simulator.suite import SuiteResult

PROG = "edge-agent-sim"


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text!r}")
    return value


def add_grid_arguments(suite: argparse.ArgumentParser) -> None:
    """The grid options of ``edge-agent-sim suite``."""
    suite.add_argument(
        "--grid",
        choices=sorted(GRIDS),
        help="run a whole grid: euro-ncap (134 car-to-car cells), lookalikes (the look-alike "
        "zoo and 10 seeded standard drives), small-overlaps (CCRs below 50 %% overlap)",
    )
    suite.add_argument(
        "--lockstep",
        action="store_true",
        help="run in simulated time with the fast path's real decision code, no agent, no "
        "waiting (with --grid or --only)",
    )
    suite.add_argument(
        "--sample",
        type=_count,
        metavar="N",
        help="with --grid: only N cells spread over the grid (against the agent: each also "
        "runs in lock-step and the two must agree)",
    )
    suite.add_argument(
        "--report", metavar="DIR", help="write GRID.json, GRID.md and GRID-heatmap.png to DIR"
    )


def grid_problem(args: argparse.Namespace) -> str:
    """Why these grid options do not go together ('' when they do)."""
    if args.grid and args.only:
        return "--grid and --only exclude each other"
    if args.grid and args.replay:
        return "--grid and --replay exclude each other"
    if args.sample and not args.grid:
        return "--sample needs --grid"
    if args.lockstep and not (args.grid or args.only):
        return "--lockstep needs --grid or --only"
    if args.report and not (args.grid or args.lockstep):
        return "--report needs --grid or --lockstep"
    return ""


def selected_cells(args: argparse.Namespace) -> list[GridCell]:
    """The cells these options select: a grid (maybe sampled) or the ``--only`` names.

    ``--seed`` sets the noise seed of every cell that has none of its own (every cell but the
    look-alike grid's seeded standard drives).
    """
    if args.grid:
        cells = GRIDS[args.grid]()
        if args.seed:  # the grid's own seeds (the standard drives') stay; the rest take --seed
            cells = [c if c.seed else dataclasses.replace(c, seed=args.seed) for c in cells]
        return sample(cells, args.sample) if args.sample else cells
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    return [cell_for(name, args.seed) for name in names]


def _row(cell: CellResult) -> str:
    def figure(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    label = cell.name if cell.seed == 0 else f"{cell.name}@{cell.seed}"
    verdict = "met" if cell.target_met else "MISSED: " + "; ".join(cell.misses)
    return (
        f"{label:<28} collision={'yes' if cell.collision else 'no':<3} "
        f"impact={figure(cell.impact_speed_kmh, 1):>5} "
        f"partial={figure(cell.first_partial_brake_s, 2):>6} "
        f"full={figure(cell.first_full_brake_s, 2):>6} activations={cell.brake_activations} "
        f"min_gap={figure(cell.min_gap_m, 2):>6}  target {verdict}"
    )


def run_lockstep_cells(args: argparse.Namespace) -> int:
    """Run the selected cells in lock-step, print them, report; 1 on a miss if asked."""
    cells = selected_cells(args)
    cpu, wall = time.process_time(), time.monotonic()
    results: list[CellResult] = []
    for cell in cells:
        result = run_cell(cell)
        results.append(result)
        print(json.dumps(result.as_dict()) if args.json else _row(result), flush=True)
    report = GridReport(
        args.grid or "only",
        results,
        cpu_s=time.process_time() - cpu,
        wall_s=time.monotonic() - wall,
    )
    summary = report.summary()
    print(
        f"{PROG}: {summary['targets_met']} of {len(results)} cells met their target in "
        f"lock-step; {summary['cpu_s']} s of CPU, {summary['wall_s']} s of wall time"
        + ("" if summary["score_pct"] is None else f"; score {summary['score_pct']} %"),
        file=sys.stderr,
    )
    status = _write_report(report, args)
    missed = summary["targets_met"] != len(results)
    return 1 if (missed and args.fail_on_target_miss) or status else 0


def _write_report(report: GridReport, args: argparse.Namespace) -> int:
    if not args.report:
        return 0
    try:
        written = report.write(Path(args.report))
    except HeatMapUnavailable as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    print(f"{PROG}: wrote {', '.join(str(path) for path in written)}", file=sys.stderr)
    return 0


STALL_MS = 50.0
"""A real-time run whose slowest decision took longer than this (five times the fast path's
10 ms p99 budget, more than two radar frames) was held up by the machine, not by the policy:
when it disagrees with lock-step, the cell runs again, at most :data:`STALL_RERUNS` times."""
STALL_RERUNS = 2


def stalled(run: SuiteResult) -> bool:
    """Whether the machine held the agent up during ``run`` (see :data:`STALL_MS`)."""
    slowest = run.max_decision_latency_ms
    return slowest is not None and slowest > STALL_MS


class RealTimeGrid:
    """Judges real-time runs of grid cells against their lock-step runs, and reports them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cells = selected_cells(args)
        self.results: list[CellResult] = []
        self._lockstep: dict[GridCell, CellResult] = {}

    def judge(
        self, cell: GridCell, run: SuiteResult, *, may_rerun: bool = False
    ) -> tuple[SuiteResult, list[str]] | None:
        """``run``, marked missed when it disagrees with lock-step; and the disagreements.

        The report's cell carries the same misses as the printed result. With ``may_rerun``,
        a disagreeing run during which the machine stalled the agent (its slowest decision
        over :data:`STALL_MS`) is not judged: None, and the caller runs the cell again.
        """
        scenario = cell.scenario()
        real = cell_result(cell, scenario, run, extra_misses=run.misses)
        if cell not in self._lockstep:  # a rerun compares with the same lock-step run
            self._lockstep[cell] = run_cell(cell)
        found = disagreements(self._lockstep[cell], real)
        if found and may_rerun and stalled(run):
            return None
        misses = [*run.misses, *(f"disagrees with lock-step: {text}" for text in found)]
        self.results.append(dataclasses.replace(real, target_met=not misses, misses=misses))
        if not found:
            return run, []
        return dataclasses.replace(run, target_met=False, misses=misses), found

    def finish(self) -> int:
        """Write the report of the real-time runs when asked; 1 if it could not be drawn."""
        name = self.args.grid or "only"
        return _write_report(GridReport(name, self.results, mode="real time"), self.args)
