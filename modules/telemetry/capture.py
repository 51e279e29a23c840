"""Condition-triggered capture with a pre-trigger ring buffer and a post-trigger window."""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable

from edge_agent.modules.telemetry.batch import Sample, SampleValue
from edge_agent.modules.telemetry.config import CaptureRule

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class Capture:
    """One capture rule's state: buffering, armed, or recording after a trigger.

    ``observe`` feeds samples; a finished capture is returned by ``observe`` (or ``poll``)
    as the list of samples from ``pre_s`` before the trigger to ``post_s`` after it.
    Triggers while a capture is recording extend nothing and are counted in ``overlapped``.
    The ring holds only the last ``pre_s`` of samples (and never more than ``max_samples``):
    anything older could never be part of a capture.
    """

    def __init__(self, rule: CaptureRule) -> None:
        self.rule = rule
        self.signals = frozenset(rule.signals)
        self.ring: deque[Sample] = deque(maxlen=rule.max_samples)
        self.recording: list[Sample] | None = None
        self.until = 0.0
        self.condition_was_true = False
        self.triggered = 0
        self.overlapped = 0
        self.truncated = 0

    def trigger(self, now: float) -> bool:
        """Start recording now; False (and counted) when a capture is already recording."""
        if self.recording is not None:
            self.overlapped += 1
            return False
        self.triggered += 1
        horizon = now - self.rule.pre_s
        self.recording = [s for s in self.ring if s.monotonic >= horizon]
        self.until = now + self.rule.post_s
        return True

    def observe(self, sample: Sample) -> list[Sample] | None:
        """Feed one sample (any signal); return a finished capture, if this completed one."""
        when = self.rule.when
        if when is not None and sample.signal == when.signal and _is_number(sample.value):
            holds = _OPS[when.op](float(sample.value), when.value)
            if holds and not self.condition_was_true:
                self.trigger(sample.monotonic)
            self.condition_was_true = holds
        if sample.signal in self.signals:
            ring = self.ring
            ring.append(sample)
            horizon = sample.monotonic - self.rule.pre_s
            while ring[0].monotonic < horizon:
                ring.popleft()
            if self.recording is not None:
                if len(self.recording) < self.rule.max_samples:
                    self.recording.append(sample)
                else:
                    self.truncated += 1
        return self.poll(sample.monotonic)

    def poll(self, now: float) -> list[Sample] | None:
        """Return the capture if its post-trigger window has ended by ``now``."""
        if self.recording is not None and now >= self.until:
            finished, self.recording = self.recording, None
            return finished
        return None


def _is_number(value: SampleValue) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
