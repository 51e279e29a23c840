"""Shared helpers of the spool tests: a hand-driven clock and real telemetry batches."""

from __future__ import annotations

import functools
import random

from edge_agent.modules.telemetry.batch import ClockQuality, Sample, encode_samples
from edge_agent.spool import AgeClock


class BootClock:
    """Wall, monotonic and boot time that only move when the test says so.

    The spool's view of time (its age clock needs a boot id and wall-clock trust); a module
    that sleeps gets ``edge_agent.clock.ManualClock`` instead.

    ``mono`` doubles as the time since boot (``CLOCK_BOOTTIME``); ``reboot`` starts it
    again under a new boot id. ``trusted`` is whether the wall clock may be believed.
    """

    def __init__(self, start: float = 1_760_000_000.0) -> None:
        self.wall = start
        self.mono = 1000.0
        self.boot = 1
        self.trusted = False

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def step_wall(self, seconds: float) -> None:
        """The wall clock is set (a time sync): only it moves."""
        self.wall += seconds

    def reboot(self, off_for: float) -> None:
        """Power off for ``off_for`` seconds (the wall clock keeps going) and boot again."""
        self.wall += off_for
        self.mono = 10.0
        self.boot += 1

    def ages(self) -> AgeClock:
        """The spool's age clock for the current boot."""
        return AgeClock(f"boot-{self.boot}", self.monotonic, lambda: self.trusted)


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
