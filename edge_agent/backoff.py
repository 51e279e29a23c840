"""Retry pacing: capped, jittered exponential backoff and a sliding failure window.

Public API: the one backoff formula of the agent. The supervisor paces module restarts with
it, and modules pace their own reconnects with it (the cloud link to its broker, the CAN
reader to its buses), so a fleet that lost its network together does not retry in lockstep.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before retry attempt ``n`` (1-based): ``min(maximum, initial * 2**(n-1))``.

    The delay is then reduced by a random fraction of up to ``jitter`` so that modules (and a
    fleet of vehicles) that failed together do not retry in lockstep.
    """

    initial: float
    maximum: float
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay for ``attempt``."""
        exponent = min(max(attempt, 1) - 1, 40)
        return min(self.maximum, self.initial * 2.0**exponent)

    def delay(self, attempt: int) -> float:
        """The jittered delay for ``attempt``: in ``[ceiling * (1 - jitter), ceiling]``."""
        return self.ceiling(attempt) * (1.0 - self.jitter * self.rng.random())


class FailureWindow:
    """Counts failures inside a sliding time window (bounded by ``limit`` entries)."""

    def __init__(self, window_s: float, limit: int) -> None:
        self.window_s = window_s
        self.limit = limit
        self._times: deque[float] = deque(maxlen=limit)

    def record(self, now: float) -> int:
        """Record a failure at ``now``; return the failures inside the window, this one included."""
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        return len(self._times)

    def exceeded(self) -> bool:
        """Whether the window holds ``limit`` failures."""
        return len(self._times) >= self.limit
