"""The grid's report: a Euro NCAP-style score, a Markdown table and a heat map.

The score is in the spirit of Euro NCAP's car-to-car rating, not its official weighting: each
cell with an obstacle scores the share of its approach speed the AEB removed before impact
(1 for an avoided collision, 0 when it never braked); a family's score (CCRs, CCRm, CCRb) is
the mean of its cells, and the grid's the mean of its families, in percent. Cells without an
obstacle (the look-alikes, the standard drives) score nothing: there, any activation is false.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.simulator.grid import CellResult

HOUR_S = 3600.0
FAMILIES = ("ccrs", "ccrm", "ccrb")


class HeatMapUnavailable(RuntimeError):
    """matplotlib (the ``demo`` extra) is not installed."""


@dataclass(frozen=True, slots=True)
class GridReport:
    """The results of one grid run, and how long it took."""

    grid: str
    cells: list[CellResult]
    mode: str = "lock-step"
    cpu_s: float | None = None
    wall_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def family_scores(self) -> dict[str, float]:
        """Mean score per car-to-car family present, in percent."""
        scores: dict[str, float] = {}
        for family in FAMILIES:
            values = [c.score for c in self.cells if c.family == family and c.score is not None]
            if values:
                scores[family] = 100.0 * statistics.fmean(values)
        return scores

    def score_pct(self) -> float | None:
        """The grid's score: the mean of its families' scores (``None``: no obstacle cells)."""
        families = self.family_scores()
        return statistics.fmean(families.values()) if families else None

    def false_activations(self) -> int:
        """Brake activations in cells without an obstacle."""
        return sum(c.brake_activations for c in self.cells if c.score is None)

    def false_activations_per_hour(self) -> float | None:
        """False activations per hour of driving in cells without an obstacle."""
        seconds = sum(c.duration_s for c in self.cells if c.score is None)
        return self.false_activations() * HOUR_S / seconds if seconds else None

    def summary(self) -> dict[str, object]:
        """The headline figures as JSON-ready values."""
        per_hour = self.false_activations_per_hour()
        score = self.score_pct()
        return {
            "grid": self.grid,
            "mode": self.mode,
            "cells": len(self.cells),
            "targets_met": sum(c.target_met for c in self.cells),
            "collisions": sum(c.collision for c in self.cells),
            "score_pct": None if score is None else round(score, 1),
            "family_scores_pct": {k: round(v, 1) for k, v in self.family_scores().items()},
            "false_activations": self.false_activations(),
            "false_activations_per_hour": None if per_hour is None else round(per_hour, 3),
            "cpu_s": None if self.cpu_s is None else round(self.cpu_s, 1),
            "wall_s": None if self.wall_s is None else round(self.wall_s, 1),
        }

    def markdown(self) -> str:
        """The per-cell table, headed by the summary, as Markdown."""
        summary = self.summary()
        lines = [
            f"Grid `{self.grid}` ({self.mode}): {summary['targets_met']} of {len(self.cells)} "
            f"targets met, {summary['collisions']} collisions, "
            f"{summary['false_activations']} false activations.",
        ]
        if summary["score_pct"] is not None:
            families = ", ".join(
                f"{name.upper()} {value:.1f} %" for name, value in self.family_scores().items()
            )
            lines[0] += f" Score {summary['score_pct']} % ({families})."
        benign_s = sum(c.duration_s for c in self.cells if c.score is None)
        if benign_s:
            lines[0] += (
                f" {benign_s / HOUR_S:.2f} h of driving without an obstacle: "
                f"{summary['false_activations_per_hour']} false activations per hour."
            )
        lines += [
            "",
            "| cell | collision | impact km/h | reduction km/h | first partial s | first full s "
            "| activations | min gap m | score | target |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for cell in self.cells:
            label = cell.name if cell.seed == 0 else f"{cell.name} (seed {cell.seed})"
            lines.append(
                f"| `{label}` | {'yes' if cell.collision else 'no'} "
                f"| {_figure(cell.impact_speed_kmh, 1)} | {_figure(cell.speed_reduction_kmh, 1)} "
                f"| {_figure(cell.first_partial_brake_s, 2)} "
                f"| {_figure(cell.first_full_brake_s, 2)} | {cell.brake_activations} "
                f"| {_figure(cell.min_gap_m, 2)} | {_figure(cell.score, 2)} "
                f"| {'met' if cell.target_met else 'MISSED: ' + '; '.join(cell.misses)} |"
            )
        return "\n".join(lines) + "\n"

    def write(self, directory: Path) -> list[Path]:
        """Write ``GRID.json``, ``GRID.md`` and, with car-to-car cells, ``GRID-heatmap.png``."""
        directory.mkdir(parents=True, exist_ok=True)
        data: dict[str, object] = {
            "summary": self.summary(),
            "notes": self.notes,
            "cells": [cell.as_dict() for cell in self.cells],
        }
        written = [directory / f"{self.grid}.json", directory / f"{self.grid}.md"]
        written[0].write_text(json.dumps(data, indent=1) + "\n")
        written[1].write_text(self.markdown())
        if any(cell.family in ("ccrs", "ccrm") for cell in self.cells):
            written.append(heat_map(self, directory / f"{self.grid}-heatmap.png"))
        return written


def _figure(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def heat_map(report: GridReport, path: Path) -> Path:
    """Draw impact speed by approach speed and overlap, CCRs and CCRm side by side, as a PNG.

    Green cells avoided the collision (the label is the smallest gap left, in m); the others
    are shaded by impact speed as a share of the approach speed (labelled "hit" and km/h).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import LinearSegmentedColormap
    except ImportError:  # the demo extra is optional
        raise HeatMapUnavailable(
            "the heat map needs matplotlib: pip install 'edge-agent[demo]'"
        ) from None
    colours = LinearSegmentedColormap.from_list(
        "impact", ["#1a9850", "#fee08b", "#fdae61", "#d73027", "#7f0000"]
    )
    families = [f for f in ("ccrs", "ccrm") if any(c.family == f for c in report.cells)]
    figure, axes = plt.subplots(1, len(families), figsize=(7.5 * len(families), 4.2), squeeze=False)
    for ax, family in zip(axes[0], families, strict=True):
        cells = [c for c in report.cells if c.family == family]
        speeds = sorted({c.speed_kmh for c in cells if c.speed_kmh is not None})
        present = {c.overlap_pct for c in cells if c.overlap_pct is not None}
        overlaps = sorted(present, key=lambda o: (o < 0, -o))  # 100, 75, 50, -50, -75
        shares = [[float("nan")] * len(speeds) for _ in overlaps]
        for cell in cells:
            row, column = overlaps.index(cell.overlap_pct or 100), speeds.index(cell.speed_kmh or 0)
            impact = cell.impact_speed_kmh or 0.0
            approach = cell.approach_speed_kmh
            shares[row][column] = impact / approach if approach else 0.0
            label = f"hit {impact:.0f}" if cell.collision else f"{_figure(cell.min_gap_m, 1)} m"
            ax.text(column, row, label, ha="center", va="center", fontsize=6.5)
        image = ax.imshow(shares, cmap=colours, vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(speeds)), [str(s) for s in speeds])
        ax.set_yticks(range(len(overlaps)), [f"{o} %" for o in overlaps])
        ax.set_xlabel("ego speed (km/h)")
        ax.set_ylabel("overlap")
        scores = report.family_scores()
        ax.set_title(f"{family.upper()}: score {scores.get(family, 0.0):.1f} %")
    figure.colorbar(image, ax=axes[0].tolist(), label="impact speed / approach speed")
    figure.suptitle(
        f"grid {report.grid}, {report.mode}: metres left when avoided, or 'hit' and the "
        "impact speed in km/h",
        fontsize=10,
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
