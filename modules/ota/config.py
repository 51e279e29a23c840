"""Options of the OTA installer module (``[modules.ota.config]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from edge_agent.config.classes import privileged, tunable
from edge_agent.exit_codes import Exit
from edge_agent.ota.gate import GateCriteria


class GuardConfig(BaseModel):
    """Vehicle-state guard: activate only while parked."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = privileged(True)
    bus: str = privileged(default="+", description="CAN bus name, or + for any bus.")
    message: str = privileged("EgoMotion")
    signal: str = privileged("EgoSpeed")
    parked_max_speed: float = privileged(
        default=0.1, ge=0, description="km/h counted as standstill."
    )
    parked_for_s: float = privileged(
        default=5.0, ge=0, description="Standstill this long = parked."
    )
    stale_after_s: float = privileged(
        default=2.0, gt=0, description="A speed older than this is unknown (not parked)."
    )


class GateConfig(GateCriteria):
    """Health gate after the switch: the criteria plus the installer's limits; see docs/ota.md."""

    spool_dir: Path | None = privileged(
        default=None, description="Directory that must be writable; default STATE_DIR/spool."
    )
    timeout_s: float = privileged(
        default=120.0, gt=0, description="Roll back if not passed by then."
    )
    max_boot_attempts: int = privileged(
        default=3, ge=1, description="Trial boots (crashes, kill -9) before rolling back."
    )


class RaucConfig(BaseModel):
    """Commands of the RAUC adapter."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] = privileged(default_factory=lambda: ["rauc"])
    reboot_command: list[str] = privileged(default_factory=lambda: ["systemctl", "reboot"])


class OtaConfig(BaseModel):
    """Where updates come from, their limits, the guard and the gate."""

    model_config = ConfigDict(extra="forbid")

    metadata_url: str = privileged(pattern=r"^https?://", description="TUF metadata base URL.")
    targets_url: str = privileged(pattern=r"^https?://", description="TUF targets base URL.")
    hardware_id: str = privileged(min_length=1, description="This ECU's hardware id.")
    updater: Literal["ab", "rauc"] = privileged("ab")
    rauc: RaucConfig = privileged(default_factory=RaucConfig)
    state_dir: Path | None = privileged(
        default=None, description="The agent's state directory; default: derived from ours."
    )
    max_bundle_bytes: int = privileged(default=512 * 1024 * 1024, gt=0)
    max_unpacked_bytes: int = privileged(default=2 * 1024 * 1024 * 1024, gt=0)
    max_config_bytes: int = privileged(
        default=1024 * 1024, gt=0, le=16 * 1024 * 1024, description="Cap of a signed config target."
    )
    stall_timeout_s: float = tunable(default=30.0, gt=0, le=3600)
    download_timeout_s: float = tunable(default=3600.0, gt=0, le=7 * 86_400)
    download_attempts: int = tunable(default=3, ge=1, le=100)
    retry_delay_s: float = tunable(
        default=2.0,
        ge=0,
        le=3600,
        description="Before the first download retry; doubles per retry up to retry_max_s, "
        "less a random part of up to half.",
    )
    retry_max_s: float = tunable(
        default=60.0, ge=0, le=3600, description="Longest wait between retries."
    )
    restart_exit_status: int = privileged(default=Exit.RESTART_REQUESTED, ge=1, le=255)
    guard: GuardConfig = privileged(default_factory=GuardConfig)
    gate: GateConfig = privileged(default_factory=GateConfig)
    status_topic: str = privileged("cloud/out/ota/status")
    jobs_topic: str = privileged("cloud/in/ota/jobs")
