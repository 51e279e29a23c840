"""Decision latency: a sliding window, and buckets since start; readable from another thread."""

from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Percentiles of decision latency in milliseconds over the window."""

    count: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


# Upper bounds (seconds) of the latency histogram's buckets, around the 10 ms default budget;
# one more bucket holds everything slower.
HISTOGRAM_BOUNDS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Every measured latency since start, bucketed (for the Prometheus histogram).

    ``counts[i]`` decisions took more than ``bounds_s[i - 1]`` and at most ``bounds_s[i]``
    seconds; the last count is those slower than every bound. ``sum_s`` is their total.
    """

    bounds_s: tuple[float, ...]
    counts: tuple[int, ...]
    sum_s: float


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``sorted_values`` lie (nearest rank)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def summarise(values_s: list[float]) -> LatencySummary:
    """Percentiles (ms) of latencies given in seconds."""
    ordered = sorted(values_s)
    return LatencySummary(
        count=len(ordered),
        p50_ms=round(percentile(ordered, 0.50) * 1000, 3),
        p99_ms=round(percentile(ordered, 0.99) * 1000, 3),
        p999_ms=round(percentile(ordered, 0.999) * 1000, 3),
        max_ms=round((ordered[-1] if ordered else 0.0) * 1000, 3),
    )


class LatencyWindow:
    """Keeps (time, latency) pairs of the last ``window_s`` seconds, at most ``capacity``.

    It also counts every latency since start into the fixed buckets of
    :data:`HISTOGRAM_BOUNDS_S` (a few integers: bounded whatever the run length).
    """

    def __init__(self, window_s: float = 60.0, capacity: int = 6000) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._buckets = [0] * (len(HISTOGRAM_BOUNDS_S) + 1)
        self._sum_s = 0.0

    def record(self, now: float, latency_s: float) -> None:
        """Add one measured latency taken at monotonic time ``now``."""
        bucket = bisect.bisect_left(HISTOGRAM_BOUNDS_S, latency_s)  # bound >= latency: "le"
        with self._lock:
            self._samples.append((now, latency_s))
            self._buckets[bucket] += 1
            self._sum_s += latency_s

    def histogram(self) -> LatencyHistogram:
        """Every latency recorded since start, bucketed."""
        with self._lock:
            return LatencyHistogram(HISTOGRAM_BOUNDS_S, tuple(self._buckets), self._sum_s)

    def summary(self, now: float) -> LatencySummary:
        """Percentiles over the samples younger than the window."""
        with self._lock:
            while self._samples and now - self._samples[0][0] > self.window_s:
                self._samples.popleft()
            values = [latency for _, latency in self._samples]
        return summarise(values)
