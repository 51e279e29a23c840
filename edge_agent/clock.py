"""Clocks the runtime and modules read time through, so tests can drive time by hand."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic and wall time plus sleeping; the supervisor hands one to every module."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (for durations and deadlines)."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch (may jump when the clock is set)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def wall(self) -> float:
        """Return ``time.time()``."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(seconds)
