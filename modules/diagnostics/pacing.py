"""Bus share: diagnostics may take at most a stated share of the bus's bits (default 5 %).

Every diagnostic frame seen on the bus (ours and the ECUs' answers) is charged at the
worst-case length of a classic frame with stuffing (135 bits for 8 data bytes). Before a
request the pacer says how long to wait until the spent bits are back under the allowance
``share * bitrate * elapsed`` (plus a small burst, so one exchange need not be split). The
same ledger gives the share actually taken, so the figure is measured, not promised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Worst case, 11-bit id, 8 data bytes, with bit stuffing.
FRAME_BITS = 135


@dataclass
class BusSharePacer:
    """A bit ledger against ``share`` of ``bitrate``; times come from the caller's clock."""

    bitrate: int
    share: float
    started: float
    burst_frames: int = 16
    frames: int = field(default=0, init=False)

    def charge(self, frames: int) -> None:
        """Record ``frames`` diagnostic frames seen on the bus."""
        self.frames += frames

    def wait_s(self, now: float) -> float:
        """Seconds to wait before the next request keeps the share (0 when it may go now)."""
        spent = (self.frames - self.burst_frames) * FRAME_BITS
        allowed_per_s = self.share * self.bitrate
        ready_at = self.started + spent / allowed_per_s
        return max(0.0, ready_at - now)

    def share_taken(self, now: float) -> float:
        """The share of the bus diagnostics took since the pacer started (0..1)."""
        elapsed = now - self.started
        if elapsed <= 0:
            return 0.0
        return self.frames * FRAME_BITS / (self.bitrate * elapsed)
