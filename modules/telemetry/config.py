"""Configuration of the telemetry batcher: streams, collection schemes, captures, batching."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from edge_agent.clocktrust import TrustPolicy
from edge_agent.config.classes import privileged, tunable

STREAM_NAME = r"^[a-z0-9][a-z0-9_-]{0,47}$"
Priority = Literal["telemetry-high", "telemetry-low"]


class SignalRule(BaseModel):
    """How one signal is collected into its stream.

    ``all``: every decoded value. ``periodic``: at most one value per ``period_s`` (the
    first that arrives after the period elapsed). ``on-change``: a value whose difference from
    the last one kept exceeds ``deadband`` (any change for text), and at least one every
    ``max_interval_s`` when set, so a steady signal still shows it is alive.
    """

    model_config = ConfigDict(extra="forbid")

    signal: str = tunable(min_length=1)
    scheme: Literal["all", "periodic", "on-change"] = tunable("all")
    period_s: float | None = tunable(default=None, gt=0)
    deadband: float = tunable(default=0.0, ge=0)
    max_interval_s: float | None = tunable(default=None, gt=0)

    @model_validator(mode="after")
    def _period_for_periodic(self) -> SignalRule:
        if self.scheme == "periodic" and self.period_s is None:
            raise ValueError("a periodic signal needs period_s")
        return self


class StreamConfig(BaseModel):
    """A telemetry stream: its signals and priority; batches go to ``telemetry/{name}``."""

    model_config = ConfigDict(extra="forbid")

    name: str = tunable(pattern=STREAM_NAME)
    priority: Priority = tunable("telemetry-low")
    signals: list[SignalRule] = tunable(min_length=1)


class Condition(BaseModel):
    """A threshold test on one signal's value."""

    model_config = ConfigDict(extra="forbid")

    signal: str = tunable(min_length=1)
    op: Literal["<", "<=", ">", ">=", "==", "!="] = tunable()
    value: float = tunable()


class CaptureRule(BaseModel):
    """Condition-triggered capture: keep ``pre_s`` before and ``post_s`` after the trigger.

    The named signals are kept at their native rate in a ring buffer of ``pre_s`` seconds
    (bounded by ``max_samples``); when ``when`` becomes true (or on a ``snapshot`` command)
    the buffer and the next ``post_s`` seconds go out as one batch on ``telemetry/{stream}``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = tunable(pattern=STREAM_NAME)
    stream: str = tunable(pattern=STREAM_NAME)
    when: Condition | None = tunable(None)
    signals: list[str] = tunable(min_length=1)
    pre_s: float = tunable(default=10.0, ge=0, le=600)
    post_s: float = tunable(default=5.0, ge=0, le=600)
    max_samples: int = tunable(default=50_000, ge=10, le=2_000_000)
    priority: Priority = tunable("telemetry-high")


class TelemetryConfig(BaseModel):
    """Options of the telemetry module."""

    model_config = ConfigDict(extra="forbid")

    source: str = privileged(
        default="can/+/decoded/#", description="Bus topics carrying DecodedMessage payloads."
    )
    streams: list[StreamConfig] = tunable(default_factory=list)
    captures: list[CaptureRule] = tunable(default_factory=list)
    batch_max_samples: int = tunable(
        default=20_000,
        ge=1,
        le=1_000_000,
        description="Cut a stream's batch at this many samples. Buffered samples cost about "
        "150 bytes of memory each; 20,000 holds 10 s of 2,000 samples/s.",
    )
    batch_max_age_s: float = tunable(
        default=10.0,
        gt=0,
        le=3600,
        description="Cut a stream's batch when its oldest sample is this old: the most "
        "telemetry a crash of the agent can lose, and the least delay to the cloud.",
    )
    resolution: Literal["ms", "us"] = tunable("ms")
    batch_format: Literal[1, 2, 3] = tunable(
        default=3,
        description="Newest batch format the cloud decodes: 3 names signals by id in a "
        "catalogue the cloud acknowledged (v2 until it has; docs/batch-format.md 3.2); 2 packs "
        "noisy integer columns (3.1); 1 for a cloud that reads only v1.",
    )
    queue_size: int = tunable(
        default=20_000, ge=10, description="Decoded messages waiting; the oldest go when full."
    )
    clock_trust: TrustPolicy = tunable(TrustPolicy.AUTO)
    scale_dbc: list[str] = privileged(
        default_factory=list,
        description="DBC files (or package:PKG/path) whose signal conversions are handed to "
        "the batch encoder as hints, so scaled values travel as small integers.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> TelemetryConfig:
        names = [s.name for s in self.streams]
        if len(names) != len(set(names)):
            raise ValueError("stream names must be unique")
        captures = [c.name for c in self.captures]
        if len(captures) != len(set(captures)):
            raise ValueError("capture names must be unique")
        return self
