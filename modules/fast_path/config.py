"""Configuration of the fast path: its own CAN channel, signal names, thresholds, budget."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from edge_agent.config.classes import privileged, tunable
from edge_agent.modules.fast_path.policy import PolicyConfig

_POLICY_DEFAULTS = PolicyConfig()


class FastPathChannel(BaseModel):
    """The CAN channel the fast path opens for itself (never shared with the CAN reader)."""

    model_config = ConfigDict(extra="forbid")

    interface: str = privileged(default="socketcan", description="Any python-can interface name.")
    channel: str = privileged("vcan0")
    bitrate: int | None = privileged(default=None, gt=0)
    fd: bool = privileged(False)
    options: dict[str, Any] = privileged(
        default_factory=dict, description="Extra keyword arguments for can.Bus."
    )


class FastPathSignals(BaseModel):
    """Where the inputs and the brake request live in the DBC."""

    model_config = ConfigDict(extra="forbid")

    radar_message: str = privileged("RadarObject")
    distance: str = privileged("ObjectDistance")
    relative_speed: str = privileged("ObjectRelativeSpeed")
    valid: str = privileged("ObjectValid")
    in_path: str | None = privileged(
        default=None,
        description="The radar's own in-path flag; when set, objects it flags out of path "
        "are dropped before the fast path's own path check.",
    )
    lateral: str | None = privileged(
        default="ObjectLateralPosition",
        description="Lateral position of the object (m, left +); empty: the radar reports none.",
    )
    width: str | None = privileged(default="ObjectWidth", description="Object width (m).")
    object_id: str | None = privileged(
        default="ObjectId", description="Track id of a radar that reports several objects."
    )
    ego_message: str = privileged("EgoMotion")
    ego_speed: str = privileged("EgoSpeed")
    ego_speed_unit: Literal["km/h", "m/s"] = privileged("km/h")
    yaw_rate: str | None = privileged(default="YawRate", description="Yaw rate (deg/s, left +).")
    acceleration: str | None = privileged(
        default="LongitudinalAccel", description="Longitudinal acceleration (m/s2)."
    )
    brake_message: str = privileged("AebBrakeRequest")
    decel: str = privileged("AebDecelRequest")
    stage: str = privileged("AebStage")
    counter: str | None = privileged("AebCounter")

    @field_validator(
        "in_path", "lateral", "width", "object_id", "yaw_rate", "acceleration", "counter"
    )
    @classmethod
    def _empty_is_absent(cls, name: str | None) -> str | None:
        """TOML has no null: an empty name says the DBC does not have that signal."""
        return name or None


class FastPathPolicy(BaseModel):
    """Thresholds of the decision (see edge_agent.modules.fast_path.policy)."""

    model_config = ConfigDict(extra="forbid")

    warn_ttc_s: float = privileged(default=_POLICY_DEFAULTS.warn_ttc_s, gt=0)
    partial_ttc_s: float = privileged(default=_POLICY_DEFAULTS.partial_ttc_s, gt=0)
    full_ttc_s: float = privileged(default=_POLICY_DEFAULTS.full_ttc_s, gt=0)
    partial_decel: float = privileged(default=_POLICY_DEFAULTS.partial_decel, gt=0, le=12)
    full_decel: float = privileged(default=_POLICY_DEFAULTS.full_decel, gt=0, le=12)
    radar_timeout_s: float = privileged(default=_POLICY_DEFAULTS.radar_timeout_s, gt=0, le=2)
    ego_timeout_s: float = privileged(default=_POLICY_DEFAULTS.ego_timeout_s, gt=0, le=2)
    max_range_m: float = privileged(default=_POLICY_DEFAULTS.max_range_m, gt=0)
    ego_width_m: float = privileged(default=_POLICY_DEFAULTS.ego_width_m, gt=0, le=3)
    path_margin_m: float = privileged(
        default=_POLICY_DEFAULTS.path_margin_m,
        ge=0,
        le=2,
        description="How close beside the ego's path an object still counts as in it.",
    )
    path_uncertainty_mps2: float = privileged(
        default=_POLICY_DEFAULTS.path_uncertainty_mps2,
        ge=0,
        le=5,
        description="Lateral acceleration by which the path may still deviate before contact.",
    )
    max_obstacle_width_m: float = privileged(
        default=_POLICY_DEFAULTS.max_obstacle_width_m,
        gt=0,
        description="Wider objects are structures (gantries, bridges), not obstacles.",
    )

    def to_policy(self) -> PolicyConfig:
        """The frozen policy thresholds these settings describe."""
        return PolicyConfig(**self.model_dump())


class FastPathConfig(BaseModel):
    """Options of the fast-path module."""

    model_config = ConfigDict(extra="forbid")

    dbc: str = privileged(
        default="package:edge_agent.simulator/data/vehicle.dbc",
        description="DBC with the radar, ego and brake messages (path or package:PKG/path).",
    )
    can: FastPathChannel = privileged(default_factory=FastPathChannel)
    signals: FastPathSignals = privileged(default_factory=FastPathSignals)
    policy: FastPathPolicy = privileged(default_factory=FastPathPolicy)
    tick_s: float = privileged(default=0.02, gt=0, le=0.5, description="Staleness check period.")
    latency_budget_ms: float = tunable(
        default=10.0, gt=0, description="p99 decision latency above this marks health degraded."
    )
    event_topic: str = privileged("events/fast_path")
