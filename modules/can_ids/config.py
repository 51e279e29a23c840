"""Options of the ``can-ids`` module: which profile watches which bus, and how it reports."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from edge_agent.config.classes import privileged, tunable


class CanIdsConfig(BaseModel):
    """Options of the ``can-ids`` module (the CAN reader must publish raw frames of each bus)."""

    model_config = ConfigDict(extra="forbid")

    profiles: dict[str, str] = privileged(
        min_length=1,
        description="Bus name (as in the CAN reader) -> profile file from 'edge-agent ids "
        "train' (or package:PKG/path). The bus needs publish_raw = true in the reader.",
    )
    queue_frames: int = privileged(
        default=8192,
        ge=64,
        le=1_000_000,
        description="Raw frames queued per bus; beyond it the oldest go (counted): the IDS "
        "never holds the CAN reader up.",
    )
    batch_frames: int = tunable(
        default=512, ge=1, le=100_000, description="Frames checked before yielding the loop."
    )
    incident_quiet_s: float = tunable(
        default=10.0, gt=0, le=3600, description="An incident closes after this long quiet."
    )
    event_topic: str = privileged(
        default="cloud/out/events",
        min_length=1,
        description="Where incidents go: the cloud link sends cloud/out/events upstream, "
        "never dropped.",
    )
