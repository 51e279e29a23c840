"""Re-stamping records that were written before the wall clock could be trusted.

The link knows no record format. A producer that stamps its records with wall-clock times
registers a re-stamp transform for its streams (``ModuleContext.streams``, see
``edge_agent.streams``); telemetry does, for its batches. Once the wall clock is trusted, the
uplink hands each record of such a stream to that transform with ``wall - monotonic`` as
measured now, and publishes what it returns (same message id, so the back end still drops
duplicates). Records of other streams, and records the transform declines, go as they are.

Only an agent that started before the clock was trusted can hold records of this boot that
need it, so an agent started with a trusted clock never calls a transform. Transforms run in
a worker thread: they may decode and re-encode.
"""

from __future__ import annotations

import asyncio

from edge_agent.clocktrust import WallClockTrust
from edge_agent.streams import StreamRegistry


class Restamper:
    """Decides per record whether it is due for re-stamping; its producer's transform does it."""

    def __init__(self, streams: StreamRegistry, trust: WallClockTrust | None = None) -> None:
        self.streams = streams
        self.trust = trust or WallClockTrust()
        self.enabled = not self.trust.trusted()
        self.restamped = 0

    async def payload_for(self, stream: str, payload: bytes) -> bytes:
        """``payload`` as it should be published now (re-stamped when that is due)."""
        if not self.enabled:
            return payload
        restamp = self.streams.restamp_for(stream)
        if restamp is None:
            return payload  # not a format with wall times its producer can correct
        offset = self.trust.monotonic_to_wall_offset()
        if offset is None:
            return payload  # still untrusted: send as marked, the back end knows
        fixed = await asyncio.to_thread(restamp, payload, offset)
        if fixed is None:
            return payload
        self.restamped += 1
        return fixed
