"""Quantities scripted over time: keyframe profiles and time windows."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Profile:
    """A value over time through keyframes ``(time_s, value)``: linear in between, flat outside."""

    times: tuple[float, ...]
    values: tuple[float, ...]

    @classmethod
    def of(cls, *points: tuple[float, float]) -> Profile:
        """A profile through ``points``, which must be sorted by time (equal times make steps)."""
        if not points:
            raise ValueError("a profile needs at least one keyframe")
        times = tuple(float(t) for t, _ in points)
        if any(later < earlier for earlier, later in itertools.pairwise(times)):
            raise ValueError(f"keyframe times must not decrease: {times}")
        return cls(times, tuple(float(v) for _, v in points))

    @classmethod
    def constant(cls, value: float) -> Profile:
        """A profile that is ``value`` at all times."""
        return cls((0.0,), (float(value),))

    def at(self, time_s: float) -> float:
        """The value at ``time_s``."""
        index = bisect.bisect_right(self.times, time_s)
        if index == 0:
            return self.values[0]
        if index == len(self.times):
            return self.values[-1]
        t0, t1 = self.times[index - 1], self.times[index]
        v0, v1 = self.values[index - 1], self.values[index]
        return v0 + (v1 - v0) * (time_s - t0) / (t1 - t0)

    def slope(self, time_s: float) -> float:
        """The rate of change at ``time_s`` (per second; zero outside the keyframes)."""
        index = bisect.bisect_right(self.times, time_s)
        if index in (0, len(self.times)):
            return 0.0
        t0, t1 = self.times[index - 1], self.times[index]
        return (self.values[index] - self.values[index - 1]) / (t1 - t0)

    def shifted(self, delay_s: float) -> Profile:
        """The same profile ``delay_s`` later (earlier when negative)."""
        return Profile(tuple(t + delay_s for t in self.times), self.values)

    @property
    def end_s(self) -> float:
        """Time of the last keyframe."""
        return self.times[-1]


def ramps(start: float, *legs: tuple[float, float, float]) -> Profile:
    """A profile from ``start`` built from legs ``(hold_s, target, rate_per_s)``.

    Each leg holds the current value for ``hold_s``, then ramps to ``target`` at ``rate_per_s``:
    the natural way to script a speed profile from accelerations.
    """
    time_s, value = 0.0, float(start)
    points = [(time_s, value)]
    for hold_s, target, rate in legs:
        time_s += hold_s
        points.append((time_s, value))
        if target != value:
            time_s += abs(target - value) / rate
            value = float(target)
            points.append((time_s, value))
    return Profile.of(*points)


@dataclass(frozen=True, slots=True)
class TimeWindows:
    """Half-open time intervals ``[start_s, end_s)``; ``end_s`` may be ``math.inf``."""

    spans: tuple[tuple[float, float], ...] = ()

    @classmethod
    def of(cls, *spans: tuple[float, float]) -> TimeWindows:
        """Windows from ``(start_s, end_s)`` pairs; each must have ``end_s > start_s >= 0``."""
        for start, end in spans:
            if not 0 <= start < end:
                raise ValueError(f"a time window needs 0 <= start < end, got {start}:{end}")
        return cls(tuple(sorted((float(s), float(e)) for s, e in spans)))

    def contains(self, time_s: float) -> bool:
        """Whether ``time_s`` falls inside one of the windows."""
        return any(start <= time_s < end for start, end in self.spans)

    def __bool__(self) -> bool:
        return bool(self.spans)

    def merged(self, other: Iterable[tuple[float, float]]) -> TimeWindows:
        """These windows plus ``other``."""
        return TimeWindows.of(*self.spans, *other)


def parse_window(text: str) -> tuple[float, float]:
    """Parse ``START:END`` (seconds; END may be empty or ``inf`` for "until the end")."""
    start_text, sep, end_text = text.strip().partition(":")
    if not sep:
        raise ValueError(f"expected START:END in seconds, got {text!r}")
    try:
        start = float(start_text)
        end = math.inf if end_text.strip() in ("", "inf") else float(end_text)
    except ValueError:
        raise ValueError(f"expected START:END in seconds, got {text!r}") from None
    if not (math.isfinite(start) and 0 <= start < end) or math.isnan(end):
        raise ValueError(f"a time window needs 0 <= START < END, got {text!r}")
    return start, end
