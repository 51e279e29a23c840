"""The agent's configuration schema (one TOML file), validated by pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge_agent.module_api import Isolation, RestartPolicy

VEHICLE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class AgentSettings(BaseModel):
    """The ``[agent]`` table: identity, state directory, shutdown budget, logging."""

    model_config = ConfigDict(extra="forbid")

    vehicle_id: str = Field(
        pattern=VEHICLE_ID_PATTERN,
        description="Vehicle identity, also the MQTT client id and username (A-Z a-z 0-9 _ . -).",
    )
    state_dir: Path = Field(
        default=Path("/var/lib/edge-agent"),
        description="Where the agent and its modules keep state (spool, OTA slots, health file).",
    )
    shutdown_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Total time allowed for a staged shutdown."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: console on a terminal, JSON lines otherwise."
    )
    cpu_affinity: list[int] | None = Field(
        default=None,
        min_length=1,
        description="CPUs the agent's own process may use (e.g. [0]); leave the others to "
        "process-isolated modules such as the fast path, which set their own.",
    )
    nice: int = Field(
        default=5,
        ge=0,
        le=19,
        description="Lower the agent's own priority by this much so its bulk work yields the "
        "CPU to process-isolated modules (the fast path), which keep the original priority.",
    )
    watchdog_max_loop_lag_s: float = Field(
        default=0.5,
        gt=0,
        description="The systemd watchdog is not pinged while the event loop lags more than this.",
    )
    health_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often the health file is rewritten."
    )


class SpoolSettings(BaseModel):
    """The ``[spool]`` table: the durable upstream spool shared by every module (docs/spool.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    path: Path | None = Field(
        default=None, description="SQLite file; default STATE_DIR/spool/spool.db."
    )
    max_mb: float = Field(default=256.0, gt=0, description="Byte cap of all records, in MiB.")
    reserve_mb: float = Field(
        default=1.0, ge=0, description="Disk held in reserve for events when the disk fills."
    )

    def resolved_path(self, state_dir: Path) -> Path:
        """Where the spool file lives."""
        return self.path or state_dir / "spool" / "spool.db"


class ModuleSettings(BaseModel):
    """One ``[modules.NAME]`` table: supervision options; module options go in ``.config``."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    required: bool = Field(
        default=False,
        description="READY is sent to systemd only once every required module runs; a broken "
        "required module stops the agent so its service manager can restart it.",
    )
    restart: RestartPolicy = RestartPolicy.ON_FAILURE
    max_failures: int = Field(default=5, ge=1, le=1000)
    failure_window_s: float = Field(default=60.0, gt=0)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    start_timeout_s: float = Field(default=10.0, gt=0)
    stop_timeout_s: float = Field(default=3.0, gt=0)
    isolation: Isolation | None = Field(
        default=None,
        description="Run in the agent's loop ('in-loop') or a child process ('process'); "
        "default: what the module declares.",
    )
    cpu_affinity: list[int] | None = Field(
        default=None,
        min_length=1,
        description="CPUs a process-isolated module's child may use (e.g. [1]).",
    )
    entry_point: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        description="Load the module from 'package.module:Class' instead of the entry-point "
        "table (for development).",
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="Module options, validated by the module's own model."
    )

    @model_validator(mode="after")
    def _backoff_cap_not_below_start(self) -> ModuleSettings:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        return self


class AgentConfig(BaseModel):
    """The whole file: ``[agent]`` plus one ``[modules.NAME]`` table per module."""

    model_config = ConfigDict(extra="forbid")

    agent: AgentSettings
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    modules: dict[str, ModuleSettings] = Field(default_factory=dict)
