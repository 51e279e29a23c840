"""Shared helpers of the spool tests: a hand-driven clock and real telemetry batches."""

from __future__ import annotations

import functools
import random

from edge_agent.batch import ClockQuality, Sample, encode_samples


class ManualClock:
    """Wall and monotonic time that only move when the test says so."""

    def __init__(self, start: float = 1_760_000_000.0) -> None:
        self.wall = start
        self.mono = 1000.0

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@functools.lru_cache(maxsize=4096)
def telemetry_batch(sequence: int, samples: int = 100, seed: int = 0) -> bytes:
    """A real format-v1 batch of noisy signals (so the degrade hook has work to do)."""
    rng = random.Random(seed * 100_003 + sequence)
    start = 1_760_000_000.0 + sequence
    rows = [
        Sample(f"sig{i % 4}", 50.0 + i * 0.01, start + i * 0.01, round(rng.gauss(0, 50), 2))
        for i in range(samples)
    ]
    return encode_samples(
        rows, vehicle_id="VIN", stream="chassis", sequence=sequence, clock=ClockQuality.TRUSTED
    )
