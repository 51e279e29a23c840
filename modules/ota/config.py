"""Options of the OTA installer module (``[modules.ota.config]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.ota.state import Phase

RESTART_EXIT_STATUS = 75  # EX_TEMPFAIL: "start me again", from the new ``current``


class GuardConfig(BaseModel):
    """Vehicle-state guard: activate only while parked."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    bus: str = Field(default="+", description="CAN bus name, or + for any bus.")
    message: str = "EgoMotion"
    signal: str = "EgoSpeed"
    parked_max_speed: float = Field(default=0.1, ge=0, description="km/h counted as standstill.")
    parked_for_s: float = Field(default=5.0, ge=0, description="Standstill this long = parked.")
    stale_after_s: float = Field(
        default=2.0, gt=0, description="A speed older than this is unknown (not parked)."
    )


class GateConfig(BaseModel):
    """Health gate after the switch; see docs/ota.md."""

    model_config = ConfigDict(extra="forbid")

    required_modules: list[str] | None = Field(
        default=None, description="Modules that must run; default: every configured module."
    )
    frames_module: str | None = Field(default=None, description="e.g. can-reader")
    frames_detail: str = "frames"
    frames_stall_s: float = Field(default=3.0, gt=0, description="No new frame this long: fail.")
    latency_module: str | None = Field(default=None, description="e.g. fast-path")
    latency_detail: str = "latency_ms.p99_ms"
    p99_budget_ms: float = Field(default=10.0, gt=0)
    spool_dir: Path | None = Field(
        default=None, description="Directory that must be writable; default STATE_DIR/spool."
    )
    stable_for_s: float = Field(default=5.0, ge=0)
    timeout_s: float = Field(default=120.0, gt=0, description="Roll back if not passed by then.")
    max_boot_attempts: int = Field(
        default=3, ge=1, description="Trial boots (crashes, kill -9) before rolling back."
    )


class RaucConfig(BaseModel):
    """Commands of the RAUC adapter."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] = Field(default_factory=lambda: ["rauc"])
    reboot_command: list[str] = Field(default_factory=lambda: ["systemctl", "reboot"])


class OtaConfig(BaseModel):
    """Where updates come from, their limits, the guard and the gate."""

    model_config = ConfigDict(extra="forbid")

    metadata_url: str = Field(pattern=r"^https?://", description="TUF metadata base URL.")
    targets_url: str = Field(pattern=r"^https?://", description="TUF targets base URL.")
    hardware_id: str = Field(min_length=1, description="This ECU's hardware id.")
    updater: Literal["ab", "rauc"] = "ab"
    rauc: RaucConfig = Field(default_factory=RaucConfig)
    state_dir: Path | None = Field(
        default=None, description="The agent's state directory; default: derived from ours."
    )
    max_bundle_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    max_unpacked_bytes: int = Field(default=2 * 1024 * 1024 * 1024, gt=0)
    stall_timeout_s: float = Field(default=30.0, gt=0)
    download_timeout_s: float = Field(default=3600.0, gt=0)
    download_attempts: int = Field(default=3, ge=1)
    retry_delay_s: float = Field(default=2.0, ge=0)
    restart_exit_status: int = Field(default=RESTART_EXIT_STATUS, ge=1, le=255)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    status_topic: str = "cloud/out/ota/status"
    jobs_topic: str = "cloud/in/ota/jobs"
    fault_injection_hold_s: dict[Phase, float] = Field(
        default_factory=dict,
        description="Testing aid: pause this long after reaching a phase (crash tests). "
        "Leave empty in production.",
    )
