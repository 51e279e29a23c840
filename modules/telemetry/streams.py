"""Per-stream sample buffers, cut into batches by size and age."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.modules.telemetry.batch import Sample


@dataclass
class StreamBuffer:
    """Samples of one stream waiting to become a batch; bounded by ``max_samples``."""

    name: str
    priority: str
    max_samples: int
    max_age_s: float
    samples: list[Sample] = field(default_factory=list)
    opened_at: float | None = None

    def add(self, sample: Sample, now: float) -> bool:
        """Add a sample; True when the buffer is now full and must be cut."""
        if self.opened_at is None:
            self.opened_at = now
        self.samples.append(sample)
        return len(self.samples) >= self.max_samples

    def due(self, now: float) -> bool:
        """Whether the oldest buffered sample has waited ``max_age_s``."""
        return self.opened_at is not None and now - self.opened_at >= self.max_age_s

    def take(self) -> list[Sample]:
        """Hand out the buffered samples and start empty."""
        taken, self.samples, self.opened_at = self.samples, [], None
        return taken
