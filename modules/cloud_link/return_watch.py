"""Noticing that the broker is reachable again, so the link need not sit out its backoff.

After an outage (a tunnel, a dead zone, a suspended ECU) the capped backoff can leave the link
waiting up to ``reconnect_max_s`` while the network is already back and the spool grows. While
the link waits, :class:`ReturnWatch` opens a plain TCP connection to the broker every
``interval_s`` (each bounded by ``timeout_s``; closed at once, no TLS, no MQTT). When a probe
that found the broker unreachable is followed by one that reaches it, the wait ends and the link
reconnects at once.

Not hammering a broker that is really down: only that unreachable-then-reachable edge ends a
wait early. A broker whose port accepts while MQTT fails (overloaded, refusing us) is reached
by the first probe; probing then stops for the rest of that wait and the backoff alone sets the
pace. While the broker host refuses or is unreachable, probes cost one SYN per ``interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from edge_agent.clock import Clock

Reach = Callable[[], Awaitable[bool]]
"""One probe: True if the broker's TCP port accepted a connection."""


def tcp_reach(host: str, port: int, timeout_s: float) -> Reach:
    """A probe that opens (and at once closes) a TCP connection to ``host:port``."""

    async def reach() -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            return False
        writer.transport.abort()  # no goodbye needed: nothing was said
        return True

    return reach


class ReturnWatch:
    """Waits out a backoff delay, or less once the broker comes back (see module doc)."""

    def __init__(self, reach: Reach, clock: Clock, interval_s: float) -> None:
        self._reach = reach
        self._clock = clock
        self.interval_s = interval_s
        self.probes = 0
        """Probes made so far."""
        self.returns = 0
        """Waits ended early because the broker became reachable again."""

    async def wait(self, delay: float) -> bool:
        """Sleep ``delay`` seconds (module clock); True if ended early by the broker's return."""
        if self.interval_s <= 0:
            await self._clock.sleep(delay)
            return False
        watching = asyncio.create_task(self._watch(), name="cloud-link.return-watch")
        sleeping = asyncio.create_task(self._clock.sleep(delay), name="cloud-link.backoff")
        try:
            await asyncio.wait((watching, sleeping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watching, sleeping):
                task.cancel()
            for task in (watching, sleeping):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        returned = watching.done() and not watching.cancelled() and watching.result()
        if returned:
            self.returns += 1
        return returned

    async def _watch(self) -> bool:
        """True once a probe reaches the broker after one did not; else runs until cancelled."""
        seen_down = False
        while True:
            started = self._clock.monotonic()
            self.probes += 1
            if await self._reach():
                if seen_down:
                    return True
                # Reachable all along: the broker itself fails us; leave it to the backoff.
                await asyncio.Event().wait()
            seen_down = True
            await self._clock.sleep(max(0.0, self.interval_s - (self._clock.monotonic() - started)))
