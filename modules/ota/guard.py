"""Vehicle-state guard: the vehicle counts as parked after its speed stayed at zero long enough."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from edge_agent.modules.ota.config import GuardConfig

# How often a waiting job looks at the guard again when no speed sample woke it.
GUARD_POLL_S = 0.2


class ParkedGuard:
    """Tracks the decoded speed signal; ``verdict`` says whether activation may happen now.

    Unknown or stale speed counts as moving: the guard only opens on evidence of standstill.
    """

    def __init__(self, config: GuardConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self._clock = clock
        self.speed: float | None = None
        self.speed_at: float | None = None
        self.still_since: float | None = None

    def observe(self, speed: float) -> None:
        """Record one speed sample (km/h, or the configured signal's unit)."""
        now = self._clock()
        if math.isnan(speed):
            return
        if abs(speed) <= self.config.parked_max_speed:
            if self.still_since is None:
                self.still_since = now
        else:
            self.still_since = None
        self.speed, self.speed_at = speed, now

    def verdict(self) -> tuple[bool, str]:
        """(parked, why not) right now."""
        if not self.config.enabled:
            return True, ""
        now = self._clock()
        topic = f"can/{self.config.bus}/decoded/{self.config.message}"
        if self.speed is None or self.speed_at is None:
            return False, f"vehicle state unknown (no {self.config.signal} on {topic})"
        if now - self.speed_at > self.config.stale_after_s:
            return False, f"vehicle state unknown ({self.config.signal} is stale)"
        if self.still_since is None:
            return False, f"vehicle moving (speed {self.speed:.1f} km/h)"
        still = now - self.still_since
        if still < self.config.parked_for_s:
            return False, (f"vehicle stopped for {still:.1f} s of {self.config.parked_for_s:g} s")
        return True, ""


async def wait_until_parked(
    guard: ParkedGuard,
    changed: asyncio.Event,
    report: Callable[[str], Awaitable[None]],
    *,
    reported: str = "",
) -> None:
    """Return once ``guard`` says parked; ``report`` each change of what is waited for.

    ``report`` gets ``"waiting: <why>"`` while the guard is closed and ``""`` once it opens,
    each time that text differs from the last one reported (``reported`` at first). The
    guard is asked again whenever ``changed`` is set (a speed sample) and at least every
    ``GUARD_POLL_S`` seconds (a stopped vehicle becomes parked without a new sample).
    """
    while True:
        parked, why = guard.verdict()
        waiting = "" if parked else f"waiting: {why}"
        if waiting != reported:
            reported = waiting
            await report(waiting)
        if parked:
            return
        changed.clear()
        try:
            async with asyncio.timeout(GUARD_POLL_S):
                await changed.wait()
        except TimeoutError:
            pass
