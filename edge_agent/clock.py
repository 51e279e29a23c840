"""Clocks the runtime and modules read time through, so tests can drive time by hand.

:class:`SystemClock` is the machine's; :class:`ManualClock` moves only when a test advances
it, so backoffs, batching windows and retry pacing run in no time and in a known order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
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


class ManualClock:
    """A clock that moves only when told to: for tests that drive time instead of waiting.

    Monotonic and wall time start where given and move together by :meth:`advance` (the wall
    clock alone jumps with :meth:`set_wall`, as when NTP steps it). :meth:`sleep` returns
    once the clock has been advanced past its deadline; the woken task runs when the event
    loop next gets control. Hand one to the supervisor (``Supervisor(config, clock=...)``) and
    every module's ``context.clock`` is this clock.
    """

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_760_000_000.0) -> None:
        self._monotonic = monotonic
        self._wall = wall
        # (deadline, order of arrival, waiter): a heap, so the earliest deadline is first.
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    def monotonic(self) -> float:
        """The current monotonic time (moves only with :meth:`advance`)."""
        return self._monotonic

    def wall(self) -> float:
        """The current wall time (moves with :meth:`advance` and :meth:`set_wall`)."""
        return self._wall

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced ``seconds`` from now.

        A zero or negative wait only yields to the event loop, like ``asyncio.sleep(0)``.
        """
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._monotonic + seconds, next(self._arrivals), waiter))
        await waiter  # a cancelled sleep cancels the waiter, which advance() then skips

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting in :meth:`sleep` right now."""
        return sum(1 for _, _, waiter in self._sleepers if not waiter.done())

    def next_wake(self) -> float | None:
        """The monotonic time the earliest sleeper waits for, or None when nobody sleeps."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def advance(self, seconds: float) -> int:
        """Move both clocks ``seconds`` forward and wake every sleeper that is due.

        Returns how many sleepers were woken.
        """
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back (advance by {seconds:g} s)")
        return self.advance_to(self._monotonic + seconds)

    def advance_to(self, monotonic: float) -> int:
        """Move the clocks so that monotonic time reads ``monotonic``; wake who is due.

        Returns how many sleepers were woken. Use it with :meth:`next_wake` to step from one
        deadline to the next exactly.
        """
        if monotonic < self._monotonic:
            raise ValueError(
                f"a monotonic clock cannot go back (from {self._monotonic:g} to {monotonic:g})"
            )
        self._wall += monotonic - self._monotonic
        self._monotonic = monotonic
        woken = 0
        while self._sleepers and self._sleepers[0][0] <= monotonic:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():
                waiter.set_result(None)
                woken += 1
        return woken

    def set_wall(self, wall: float) -> None:
        """Step the wall clock to ``wall`` (either way); monotonic time and sleepers stay."""
        self._wall = wall
