"""Collection schemes: which decoded values become samples (pure, clock passed in)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge_agent.modules.telemetry.batch import SampleValue
from edge_agent.modules.telemetry.config import SignalRule


@dataclass
class Collector:
    """Decides, value by value, whether one signal's reading is kept (see SignalRule)."""

    rule: SignalRule
    last_time: float = -math.inf
    last_value: SampleValue | None = None

    def offer(self, now: float, value: SampleValue) -> bool:
        """Whether ``value`` read at monotonic ``now`` becomes a sample; remembers it if so."""
        rule = self.rule
        keep: bool
        if rule.scheme == "all":
            keep = True
        elif rule.scheme == "periodic":
            assert rule.period_s is not None
            keep = now - self.last_time >= rule.period_s
        else:
            keep = self._changed(value) or (
                rule.max_interval_s is not None and now - self.last_time >= rule.max_interval_s
            )
        if keep:
            self.last_time = now
            self.last_value = value
        return keep

    def _changed(self, value: SampleValue) -> bool:
        last = self.last_value
        if last is None:
            return True
        numeric = (int, float)
        if isinstance(value, numeric) and isinstance(last, numeric) and not isinstance(value, bool):
            return abs(float(value) - float(last)) > self.rule.deadband
        return value != last
