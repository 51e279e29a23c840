"""Re-stamping telemetry batches that were cut before the wall clock could be trusted.

A batch cut while the clock was unsynchronised carries ``clock: untrusted``, its boot id, and
sample offsets on the monotonic clock. Once the clock is trusted, the uplink replaces its wall
base with ``monotonic base + (wall - monotonic)`` measured now (same boot only) and marks it
``untrusted-restamped``, keeping the message id, so the back end sees corrected times and can
still drop duplicates. Batches from another boot are sent as they are.

Checking costs a decode, so it is only done in an agent that started before the clock was
trusted (the only time untrusted batches of this boot can exist), and off the event loop.
"""

from __future__ import annotations

import asyncio

from edge_agent.batch import (
    BatchFormatError,
    ClockQuality,
    WallClockTrust,
    current_boot_id,
    decode_batch,
    reencode_batch,
    restamp,
)


class Restamper:
    """Decides per record whether its batch needs re-stamping, and does it."""

    def __init__(self, trust: WallClockTrust | None = None, boot_id: str | None = None) -> None:
        self.trust = trust or WallClockTrust()
        self.boot_id = current_boot_id() if boot_id is None else boot_id
        self.enabled = not self.trust.trusted()
        self.restamped = 0

    def _restamp(self, payload: bytes, offset: float) -> bytes | None:
        try:
            batch = decode_batch(payload)
        except BatchFormatError:
            return None
        if batch.clock is not ClockQuality.UNTRUSTED or batch.boot_id != self.boot_id:
            return None
        return reencode_batch(restamp(batch, offset, boot_id=self.boot_id))

    async def payload_for(self, stream: str, payload: bytes) -> bytes:
        """``payload`` as it should be published now (re-stamped when that is due)."""
        if not self.enabled or not stream.startswith("telemetry/"):
            return payload
        offset = self.trust.monotonic_to_wall_offset()
        if offset is None:
            return payload  # still untrusted: send as marked, the back end knows
        fixed = await asyncio.to_thread(self._restamp, payload, offset)
        if fixed is None:
            return payload
        self.restamped += 1
        return fixed
