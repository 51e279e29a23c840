"""Learning a bus profile from clean traffic (``edge-agent ids train`` and the benchmark)."""

from __future__ import annotations

import statistics
from array import array
from dataclasses import dataclass, field

from edge_agent.modules.can_ids.integrity import (
    SAMPLE_FRAMES,
    IntegrityHints,
    learn_integrity,
)
from edge_agent.modules.can_ids.profile import BusProfile, IdProfile

LOAD_WINDOW_S = 0.1
MIN_PERIODIC_FRAMES = 20
# An id is periodic when 95 % of its intervals lie within this factor of the median.
PERIODIC_SPREAD = 0.25
MEAN_WINDOW = 32
"""Intervals per window for the sender-clock (masquerade) check."""
MIN_MEAN_TOLERANCE = 0.005
"""Window means may stray this share of the period even if training never saw it."""
TIME_GAP_S = 2.0
"""Silence of the whole bus this long (or time going backwards) is a gap in the log."""
REORDER_S = 0.05
"""Time may step back this much between frames (receive stamps of a busy bus) and still count."""


@dataclass(slots=True)
class _IdTraffic:
    count: int = 0
    last_t: float = -1.0
    reference: int | None = None
    changed: int = 0
    dlcs: set[int] = field(default_factory=set)
    intervals: array[float] = field(default_factory=lambda: array("d"))
    sample: list[bytes] = field(default_factory=list)  # first payloads: counters, checksums


class ProfileLearner:
    """Feeds on clean frames (in time order) and builds a :class:`BusProfile`.

    Gaps in the log (the whole bus silent for ``TIME_GAP_S`` or time going backwards) are
    stepped over: no interval spans them. ``hints`` (from a DBC, by id key) name counter and
    checksum fields; without them both are looked for in the traffic.
    """

    def __init__(self, source: str = "", hints: dict[int, IntegrityHints] | None = None) -> None:
        self.source = source
        self.hints = hints or {}
        self._ids: dict[int, _IdTraffic] = {}
        self._frames = 0
        self._first_t: float | None = None
        self._last_t = 0.0
        self._duration = 0.0
        self._window_start = 0.0
        self._window_frames = 0
        self._window_errors = 0
        self._max_frames = 0
        self._max_errors = 0
        self.gaps = 0

    def observe(self, t: float, key: int, data: bytes, *, error: bool = False) -> None:
        """Take one frame at time ``t`` (seconds) with id ``key`` and payload ``data``."""
        self._frames += 1
        if self._first_t is None:
            self._first_t = self._last_t = self._window_start = t
        elif t < self._last_t - REORDER_S or t - self._last_t > TIME_GAP_S:
            self.gaps += 1
            self._duration += self._last_t - self._first_t
            self._first_t = self._window_start = t
            self._window_frames = self._window_errors = 0
            for traffic in self._ids.values():
                traffic.last_t = -1.0
        self._last_t = max(t, self._last_t)
        if t - self._window_start >= LOAD_WINDOW_S:
            self._max_frames = max(self._max_frames, self._window_frames)
            self._max_errors = max(self._max_errors, self._window_errors)
            self._window_start = t - (t - self._window_start) % LOAD_WINDOW_S
            self._window_frames = self._window_errors = 0
        self._window_frames += 1
        if error:
            self._window_errors += 1
            return
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = _IdTraffic()
        traffic = found
        value = int.from_bytes(data, "little")
        traffic.count += 1
        traffic.dlcs.add(len(data))
        if traffic.reference is None:
            traffic.reference = value
        else:
            traffic.changed |= value ^ traffic.reference
        if traffic.last_t >= 0:
            traffic.intervals.append(t - traffic.last_t)
        if len(traffic.sample) < SAMPLE_FRAMES and len(data) <= 8:
            traffic.sample.append(data)
        traffic.last_t = t

    def profile(self) -> BusProfile:
        """The profile of everything observed so far."""
        duration = self._duration + (self._last_t - (self._first_t or 0.0))
        ids = {
            key: _id_profile(key, traffic, self.hints.get(key))
            for key, traffic in self._ids.items()
        }
        return BusProfile(
            frames=self._frames,
            duration_s=round(duration, 6),
            load_window_s=LOAD_WINDOW_S,
            max_frames_per_window=max(self._max_frames, self._window_frames),
            max_error_frames_per_window=max(self._max_errors, self._window_errors),
            ids=ids,
            source=self.source,
        )


def _id_profile(key: int, traffic: _IdTraffic, hints: IntegrityHints | None) -> IdProfile:
    width = max(traffic.dlcs) * 8 if traffic.dlcs else 0
    all_bits = (1 << width) - 1
    integrity = learn_integrity(key, traffic.sample, hints)
    profile = IdProfile(
        count=traffic.count,
        dlcs=sorted(traffic.dlcs),
        reference=traffic.reference or 0,
        constant_mask=all_bits & ~traffic.changed,
        counter=None if integrity.counter is None else list(integrity.counter),
        checksum=None if integrity.checksum is None else list(integrity.checksum),
    )
    intervals = traffic.intervals
    if len(intervals) + 1 < MIN_PERIODIC_FRAMES:
        return profile
    period = statistics.median(intervals)
    if period <= 0:
        return profile
    near = sum(1 for i in intervals if abs(i - period) <= PERIODIC_SPREAD * period)
    if near < 0.95 * len(intervals):
        return profile
    profile.periodic = True
    profile.period_s = round(period, 9)
    # Shortest/longest regular interval: a dropped frame (a gap) is suspension's business.
    regular = [i for i in intervals if i <= 1.5 * period]
    profile.min_interval_s = round(min(regular), 9)
    profile.max_interval_s = round(max(intervals), 9)
    profile.mean_tolerance_s = round(_mean_straying(regular, period), 9)
    return profile


def _mean_straying(intervals: list[float], period: float) -> float:
    """How far the mean of ``MEAN_WINDOW`` consecutive intervals strayed from ``period``."""
    floor = MIN_MEAN_TOLERANCE * period
    if len(intervals) < MEAN_WINDOW:
        return floor
    window = sum(intervals[:MEAN_WINDOW])
    worst = abs(window / MEAN_WINDOW - period)
    for index in range(MEAN_WINDOW, len(intervals)):
        window += intervals[index] - intervals[index - MEAN_WINDOW]
        worst = max(worst, abs(window / MEAN_WINDOW - period))
    return max(2.0 * worst, floor)
