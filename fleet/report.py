"""The ``fleet-bench`` report: acked against written by id, latency, rates, CPU per part.

Everything here is computed from what was measured: the vehicles' own records of which
batch got a PUBACK and when it went out, and the database's rows (ids and ``written_at``)
and counts (``duplicate_rows`` by SQL, :func:`edge_agent.fleet.store.counts`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_agent.fleet.bench import BenchOptions, Timeline
    from edge_agent.fleet.bench_parts import WorkerPool
    from edge_agent.fleet.generator import FleetReport
    from edge_agent.fleet.traffic import TrafficProfile


def percentile(values: Iterable[float], share: float) -> float | None:
    """The ``share`` quantile (0..1) of ``values`` by linear interpolation; None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    if len(ordered) == 1:
        return ordered[0]
    value = statistics.quantiles(ordered, n=1000, method="inclusive")[round(share * 1000) - 1]
    # Interpolation may round a hair outside equal neighbours; a quantile never is.
    return min(max(value, ordered[0]), ordered[-1])


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def latency_figures(
    acked: dict[tuple[str, str], list[Any]],
    rows: dict[tuple[str, str], tuple[float, float]],
    window: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Send-to-row latency (ms) of batches published once (optionally: sent in ``window``).

    A batch published twice (its PUBACK lost in a node kill, or sent again after a
    reconnect) has no single send time: it is counted in ``resent`` and left out. The two
    legs: send to JetStream's store (``stored_*``), and store to row (``worker_*``).
    """
    latencies, stored, worker = [], [], []
    resent = 0
    for key, batch in acked.items():
        row = rows.get(key)
        if row is None:
            continue
        sends, first_sent = int(batch[3]), float(batch[4])
        if window is not None and not window[0] <= first_sent < window[1]:
            continue
        if sends != 1:
            resent += 1
            continue
        latencies.append((row[0] - first_sent) * 1000.0)
        stored.append((row[1] - first_sent) * 1000.0)
        worker.append((row[0] - row[1]) * 1000.0)
    return {
        "batches": len(latencies),
        "resent": resent,
        "p50_ms": _rounded(percentile(latencies, 0.5)),
        "p99_ms": _rounded(percentile(latencies, 0.99)),
        "max_ms": _rounded(max(latencies, default=None)),
        "stored_p50_ms": _rounded(percentile(stored, 0.5)),
        "stored_p99_ms": _rounded(percentile(stored, 0.99)),
        "worker_p50_ms": _rounded(percentile(worker, 0.5)),
        "worker_p99_ms": _rounded(percentile(worker, 0.99)),
    }


def _rate(count: int, times: list[float]) -> float | None:
    if count < 2 or len(times) < 2 or max(times) <= min(times):
        return None
    return round(count / (max(times) - min(times)), 1)


async def bench_result(
    options: BenchOptions,
    *,
    report: FleetReport,
    dsn: str,
    profile: TrafficProfile,
    timeline: Timeline,
    workers: WorkerPool,
    nodes_killed: int,
    cpu: dict[str, Any],
    pipeline: dict[str, Any],
) -> dict[str, Any]:
    """The JSON report of one ``fleet-bench`` run."""
    from edge_agent.fleet.bench_parts import batch_rows
    from edge_agent.fleet.store import counts

    rows = await batch_rows(dsn)
    tables = await counts(dsn)
    acked = report.acked_batches()
    lost = sorted(key for key in acked if key not in rows)
    produced = report.total("produced")
    whole = latency_figures(acked, rows)
    quiet = (timeline.steady_from, timeline.first_kill or float("inf"))
    baseline = latency_figures(acked, rows, window=quiet)
    sent_times = [float(b[4]) for b in acked.values()]
    ack_times = [float(b[6]) for b in acked.values()]
    worker_stats = workers.stats()
    p99, base_p99 = whole["p99_ms"], baseline["p99_ms"]
    return {
        "vehicles": len(report.vehicles),
        "acked": len(acked),
        "written": tables["batches"],
        "lost": len(lost),
        "lost_examples": [list(key) for key in lost[:5]],
        "duplicate_rows": tables["duplicate_rows"],
        "redeliveries": worker_stats["redeliveries"],
        "nodes_killed": nodes_killed,
        "workers_killed": workers.killed,
        "in_per_s": _rate(len(acked), sent_times + ack_times),
        "written_per_s": _rate(tables["batches"], [written for written, _ in rows.values()]),
        "p50_ms": whole["p50_ms"],
        "p99_ms": p99,
        "max_ms": whole["max_ms"],
        "latency_batches": whole["batches"],
        "resent_batches": whole["resent"],
        "legs_ms": {key: value for key, value in whole.items() if "_p" in key},
        "baseline": {
            "what": "batches sent after every vehicle started and before the first kill",
            **baseline,
        },
        "p99_ratio": None if not (p99 and base_p99) else round(p99 / base_p99, 2),
        "produced": produced,
        "unacked": produced - len(acked),
        "spool_refused": report.total("spool_refused"),
        "stuck_links": report.total("stuck_links"),
        "overran": report.total("overran"),
        "loop_reports": report.loop_reports,
        "publishes": report.total("publishes"),
        "failovers": report.total("failovers"),
        "offline_windows": report.total("offline_windows"),
        "tables": tables,
        "workers": {"count": options.workers, **worker_stats},
        "pipeline": pipeline,
        "profile": {
            "name": profile.name,
            "batch_format": options.batch_format,
            "speedup": options.speedup,
            "bytes_per_vehicle_hour": round(profile.bytes_per_hour * options.speedup),
            "batches_per_vehicle_hour": round(profile.batches_per_hour * options.speedup, 1),
        },
        "minutes": options.minutes,
        "nodes": options.nodes,
        "processes": options.processes,
        "generator_cpu_s": [round(c, 1) for c in report.process_cpu_s],
        "cpu": cpu,
        "timeline": timeline.events,
    }
