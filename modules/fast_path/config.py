"""Configuration of the fast path: its own CAN channel, signal names, thresholds, budget."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.modules.fast_path.policy import PolicyConfig

_POLICY_DEFAULTS = PolicyConfig()


class FastPathChannel(BaseModel):
    """The CAN channel the fast path opens for itself (never shared with the CAN reader)."""

    model_config = ConfigDict(extra="forbid")

    interface: str = Field(default="socketcan", description="Any python-can interface name.")
    channel: str = "vcan0"
    bitrate: int | None = Field(default=None, gt=0)
    fd: bool = False
    options: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments for can.Bus."
    )


class FastPathSignals(BaseModel):
    """Where the inputs and the brake request live in the DBC."""

    model_config = ConfigDict(extra="forbid")

    radar_message: str = "RadarObject"
    distance: str = "ObjectDistance"
    relative_speed: str = "ObjectRelativeSpeed"
    valid: str = "ObjectValid"
    in_path: str | None = "ObjectInPath"
    ego_message: str = "EgoMotion"
    ego_speed: str = "EgoSpeed"
    ego_speed_unit: Literal["km/h", "m/s"] = "km/h"
    brake_message: str = "AebBrakeRequest"
    decel: str = "AebDecelRequest"
    stage: str = "AebStage"
    counter: str | None = "AebCounter"


class FastPathPolicy(BaseModel):
    """Thresholds of the decision (see edge_agent.modules.fast_path.policy)."""

    model_config = ConfigDict(extra="forbid")

    warn_ttc_s: float = Field(default=_POLICY_DEFAULTS.warn_ttc_s, gt=0)
    partial_ttc_s: float = Field(default=_POLICY_DEFAULTS.partial_ttc_s, gt=0)
    full_ttc_s: float = Field(default=_POLICY_DEFAULTS.full_ttc_s, gt=0)
    partial_decel: float = Field(default=_POLICY_DEFAULTS.partial_decel, gt=0, le=12)
    full_decel: float = Field(default=_POLICY_DEFAULTS.full_decel, gt=0, le=12)
    radar_timeout_s: float = Field(default=_POLICY_DEFAULTS.radar_timeout_s, gt=0, le=2)
    ego_timeout_s: float = Field(default=_POLICY_DEFAULTS.ego_timeout_s, gt=0, le=2)
    max_range_m: float = Field(default=_POLICY_DEFAULTS.max_range_m, gt=0)

    def to_policy(self) -> PolicyConfig:
        """The frozen policy thresholds these settings describe."""
        return PolicyConfig(**self.model_dump())


class FastPathConfig(BaseModel):
    """Options of the fast-path module."""

    model_config = ConfigDict(extra="forbid")

    dbc: str = Field(
        default="package:edge_agent.simulator/data/vehicle.dbc",
        description="DBC with the radar, ego and brake messages (path or package:PKG/path).",
    )
    can: FastPathChannel = Field(default_factory=FastPathChannel)
    signals: FastPathSignals = Field(default_factory=FastPathSignals)
    policy: FastPathPolicy = Field(default_factory=FastPathPolicy)
    tick_s: float = Field(default=0.02, gt=0, le=0.5, description="Staleness check period.")
    latency_budget_ms: float = Field(
        default=10.0, gt=0, description="p99 decision latency above this marks health degraded."
    )
    event_topic: str = "events/fast_path"
