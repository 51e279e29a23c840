"""The CAN reader's health details as Prometheus metrics (per bus: frames, decoded, drops)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from edge_agent.metrics import Sample, counter, gauge, state_set, table

# detail key -> (metric name, help)
BUS_COUNTERS = {
    "frames": ("can_frames_total", "CAN frames received."),
    "decoded": ("can_decoded_frames_total", "Frames decoded with the bus's database."),
    "unknown_ids": ("can_unknown_id_frames_total", "Frames with an id the database lacks."),
    "error_frames": ("can_error_frames_total", "CAN error frames."),
    "decode_failures": ("can_decode_failures_total", "Frames that could not be decoded."),
    "drops": ("can_dropped_frames_total", "Frames dropped on the hand-over to the agent."),
    "reconnects": ("can_reconnects_total", "Times the bus was reopened."),
}


def can_reader_metrics(details: Mapping[str, Any]) -> Iterator[Sample]:
    """Per-bus counters, the frames waiting in each bus's hand-over queue, and bus state."""
    for bus, counts in table(details.get("buses")).items():
        if not isinstance(counts, Mapping):
            continue
        for key, (name, help_text) in BUS_COUNTERS.items():
            yield from counter(name, counts.get(key), help_text, bus=bus)
        yield from gauge(
            "can_pending_frames", counts.get("pending"), "Frames in the hand-over queue.", bus=bus
        )
        yield from gauge(
            "can_bus_up", counts.get("state") == "up", "1 while the bus is up.", bus=bus
        )
        yield from state_set(
            "can_bus_state", counts.get("state"), "State of each bus.", "state", bus=bus
        )
