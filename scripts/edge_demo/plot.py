"""A PNG of the drive: speed, distance and TTC, brake, and the uplink, on one time axis.

Needs matplotlib (the ``demo`` extra); :mod:`edge_demo.report` skips the plot without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

if TYPE_CHECKING:
    from edge_demo.report import Outage
    from edge_demo.timeline import Timeline


def _shade(axes: list[Axes], spans: list[tuple[float, float]], colour: str) -> None:
    for ax in axes:
        for start, end in spans:
            ax.axvspan(start, end, color=colour, alpha=0.15, linewidth=0)


def _spans(times: list[float], flags: list[bool]) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for at, flag in zip(times, flags, strict=True):
        if flag and start is None:
            start = at
        elif not flag and start is not None:
            spans.append((start, at))
            start = None
    if start is not None and times:
        spans.append((start, times[-1]))
    return spans


def plot_drive(path: Path, timeline: Timeline, outage: Outage | None) -> Path:
    """Draw the run into ``path`` (PNG) and return it."""
    t0 = timeline.started
    samples = timeline.samples
    times = [s["wall"] - t0 for s in samples]
    figure, axes = plt.subplots(4, 1, sharex=True, figsize=(11, 9), constrained_layout=True)
    speed_ax, gap_ax, brake_ax, link_ax = axes
    figure.suptitle("edge-agent demo: demo-route, closed loop")

    speed_ax.plot(times, [s["speed_kmh"] for s in samples], color="tab:blue")
    speed_ax.set_ylabel("speed (km/h)")

    gaps = [s["gap_m"] if s["in_lane"] and s["gap_m"] < 250 else None for s in samples]
    gap_ax.plot(
        times,
        [float("nan") if g is None else g for g in gaps],
        color="tab:green",
        label="distance to the object in lane (m)",
    )
    gap_ax.set_ylabel("distance (m)")
    ttc_ax = gap_ax.twinx()
    ttcs = [s["ttc_s"] if s["ttc_s"] is not None and s["ttc_s"] < 10 else None for s in samples]
    ttc_ax.plot(
        times,
        [float("nan") if t is None else t for t in ttcs],
        color="tab:orange",
        label="time to collision (s)",
    )
    ttc_ax.set_ylabel("TTC (s)")
    ttc_ax.set_ylim(0, 10)
    gap_ax.legend(loc="upper left", fontsize=8)
    ttc_ax.legend(loc="upper right", fontsize=8)

    brake_ax.plot(
        times,
        [s["brake_request_mps2"] for s in samples],
        color="tab:red",
        label="requested by the fast path",
    )
    brake_ax.plot(
        times,
        [s["decel_mps2"] for s in samples],
        color="tab:purple",
        label="applied (actuator lag)",
    )
    brake_ax.set_ylabel("brake (m/s²)")
    brake_ax.legend(loc="upper right", fontsize=8)

    ticks = timeline.ticks
    tick_times = [t.wall - t0 for t in ticks]
    link_ax.step(
        tick_times,
        [t.spool_records or 0 for t in ticks],
        where="post",
        color="tab:brown",
        label="spool depth (records)",
    )
    link_ax.set_ylabel("spool (records)")
    cloud_ax = link_ax.twinx()
    cloud_ax.step(
        tick_times,
        [t.cloud_batches for t in ticks],
        where="post",
        color="tab:gray",
        label="batches the cloud received",
    )
    cloud_ax.set_ylabel("cloud batches")
    link_ax.legend(loc="upper left", fontsize=8)
    cloud_ax.legend(loc="lower right", fontsize=8)
    link_ax.set_xlabel("seconds since the agent was ready")

    dropouts = _spans(times, [not s["radar"] for s in samples])
    _shade(list(axes), dropouts, "gold")
    if outage is not None:
        _shade(list(axes), [(outage[0], outage[1])], "red")
    for at, text in timeline.moments:
        if text.startswith(("fast path", "COLLISION")):
            speed_ax.axvline(at, color="tab:red", linewidth=0.6, linestyle=":")
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
