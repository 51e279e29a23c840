"""The fast path's health details as Prometheus metrics: decisions, faults, decision latency.

The decision latency is a histogram of every decision since the module started
(``fast_path_decision_latency_seconds``: the buckets the fast path counts as it records each
latency, after its brake frame is sent), and a summary of its recent window
(``fast_path_decision_latency_recent_seconds``: the p50, p99, p99.9 and count it reports).
Both are read from its last health report at scrape time: a scrape takes no lock the
decision thread takes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from typing import Any

from edge_agent.metrics import HISTOGRAM, SUMMARY, Sample, counter, gauge

COUNTERS = {
    "decisions": ("fast_path_decisions_total", "Brake decisions taken."),
    "brake_frames": ("fast_path_brake_frames_total", "Brake request frames sent."),
    "send_failures": ("fast_path_send_failures_total", "Brake request frames that failed to send."),
    "bad_frames": ("fast_path_bad_frames_total", "Sensor frames rejected as implausible."),
    "events_dropped": (
        "fast_path_events_dropped_total",
        "Fast-path events that could not be queued.",
    ),
}
LATENCY = "fast_path_decision_latency_seconds"
LATENCY_HELP = "Decision latency, sensor frame to decision (every decision since start)."
RECENT = "fast_path_decision_latency_recent_seconds"
QUANTILES = {"p50_ms": "0.5", "p99_ms": "0.99", "p999_ms": "0.999"}
RECENT_HELP = "Decision latency, sensor frame to decision (quantiles of the recent window)."


def fast_path_metrics(details: Mapping[str, Any]) -> Iterator[Sample]:
    """Decision counters, fault state, latency histogram and summary, and budget."""
    for key, (name, help_text) in COUNTERS.items():
        yield from counter(name, details.get(key), help_text)
    fault = details.get("fault")
    yield from gauge("fast_path_fault", bool(fault), "1 while the fast path is in a fault state.")
    latency = details.get("latency_ms")
    if isinstance(latency, Mapping):
        for key, quantile in QUANTILES.items():
            value = latency.get(key)
            if isinstance(value, int | float):
                yield Sample(RECENT, value / 1000, SUMMARY, RECENT_HELP, {"quantile": quantile})
        count = latency.get("count")
        if isinstance(count, int | float):
            yield Sample(f"{RECENT}_count", count, SUMMARY, RECENT_HELP, family=RECENT)
        peak = latency.get("max_ms")
        if isinstance(peak, int | float):
            yield from gauge(
                "fast_path_decision_latency_max_seconds", peak / 1000, "Slowest recent decision."
            )
    yield from latency_histogram(details.get("latency_histogram"))
    budget = details.get("latency_budget_ms")
    if isinstance(budget, int | float):
        yield from gauge(
            "fast_path_latency_budget_seconds", budget / 1000, "The decision latency budget."
        )


def latency_histogram(reported: Any) -> Iterator[Sample]:
    """The histogram's samples from the reported buckets; nothing unless they are consistent.

    ``reported`` is ``{"bounds_s": [...], "counts": [...], "sum_s": x}`` as the fast path
    writes it (per-bucket counts, one more than bounds); the exposition is cumulative.
    """
    if not isinstance(reported, Mapping):
        return
    bounds, counts, total = reported.get("bounds_s"), reported.get("counts"), reported.get("sum_s")
    if (
        not (isinstance(bounds, list) and isinstance(counts, list))
        or len(counts) != len(bounds) + 1
    ):
        return
    if not all(
        isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in bounds
    ):
        return
    if any(later <= earlier for earlier, later in itertools.pairwise(bounds)):
        return
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        return
    if not isinstance(total, int | float) or isinstance(total, bool):
        return
    cumulative = 0
    for bound, count in zip([*map(float, bounds), float("inf")], counts, strict=True):
        cumulative += count
        le = "+Inf" if bound == float("inf") else repr(bound)
        yield Sample(f"{LATENCY}_bucket", cumulative, HISTOGRAM, LATENCY_HELP, {"le": le}, LATENCY)
    yield Sample(f"{LATENCY}_count", cumulative, HISTOGRAM, LATENCY_HELP, family=LATENCY)
    yield Sample(f"{LATENCY}_sum", float(total), HISTOGRAM, LATENCY_HELP, family=LATENCY)
