"""The agent's configuration schema (one TOML file), validated by pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from edge_agent.config.classes import privileged, tunable
from edge_agent.module_api import Isolation, RestartPolicy

VEHICLE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class AgentSettings(BaseModel):
    """The ``[agent]`` table: identity, state directory, shutdown budget, logging.

    Local: it comes from the file only; no desired state or signed config target changes it.
    """

    model_config = ConfigDict(extra="forbid")

    vehicle_id: str = privileged(
        pattern=VEHICLE_ID_PATTERN,
        description="Vehicle identity, also the MQTT client id and username (A-Z a-z 0-9 _ . -).",
    )
    state_dir: Path = privileged(
        default=Path("/var/lib/edge-agent"),
        description="Where the agent and its modules keep state (spool, OTA slots, health file).",
    )
    shutdown_timeout_s: float = privileged(
        default=10.0, gt=0, le=300, description="Total time allowed for a staged shutdown."
    )
    log_level: Literal["debug", "info", "warning", "error"] = tunable("info")
    log_format: Literal["auto", "json", "console"] = tunable(
        default="auto", description="auto: console on a terminal, JSON lines otherwise."
    )
    cpu_affinity: list[int] | None = privileged(
        default=None,
        min_length=1,
        description="CPUs the agent's own process may use (e.g. [0]); leave the others to "
        "process-isolated modules such as the fast path, which set their own.",
    )
    nice: int = privileged(
        default=5,
        ge=0,
        le=19,
        description="Lower the agent's own priority by this much so its bulk work yields the "
        "CPU to process-isolated modules (the fast path), which keep the original priority.",
    )
    watchdog_max_loop_lag_s: float = privileged(
        default=0.5,
        gt=0,
        description="The systemd watchdog is not pinged while the event loop lags more than this.",
    )
    health_interval_s: float = tunable(
        default=1.0, gt=0, le=60, description="How often the health file is rewritten."
    )
    link_probation_s: float = privileged(
        default=120.0,
        gt=0,
        le=3600,
        description="A config change that touches the cloud link is kept only if the link "
        "reports online again within this long; otherwise the previous config returns.",
    )


class SpoolSettings(BaseModel):
    """The ``[spool]`` table: the durable upstream spool shared by every module (docs/spool.md).

    Local: it comes from the file only; no desired state or signed config target changes it.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = privileged(True)
    path: Path | None = privileged(
        default=None, description="SQLite file; default STATE_DIR/spool/spool.db."
    )
    max_mb: float = privileged(default=256.0, gt=0, description="Byte cap of all records, in MiB.")
    reserve_mb: float = privileged(
        default=1.0, ge=0, description="Disk held in reserve for events when the disk fills."
    )
    memory_mb: float = privileged(
        default=8.0,
        gt=0,
        description="Most records kept in memory while the disk cannot be used, in MiB.",
    )

    def resolved_path(self, state_dir: Path) -> Path:
        """Where the spool file lives."""
        return self.path or state_dir / "spool" / "spool.db"


class MetricsSettings(BaseModel):
    """The ``[metrics]`` table: the Prometheus endpoint, off unless the table is there.

    Local and privileged: it opens a port. Loopback by default; a scraper elsewhere needs an
    explicit address here (docs/metrics.md).
    """

    model_config = ConfigDict(extra="forbid")

    listen: str = privileged(
        default="127.0.0.1:9464",
        pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$",
        description="HOST:PORT to serve /metrics on ([::1]:PORT for IPv6; port 0: any free).",
    )
    max_scrapes: int = privileged(
        default=4, ge=1, le=64, description="Scrapes served at once; more are answered 503."
    )
    timeout_s: float = privileged(
        default=5.0,
        gt=0,
        le=60,
        description="Time a scraper has to send its request and take the answer.",
    )

    @model_validator(mode="after")
    def _port_in_range(self) -> MetricsSettings:
        if self.port > 65535:
            raise ValueError(f"listen port {self.port} is not 0..65535")
        return self

    @property
    def host(self) -> str:
        """The address to bind, without IPv6 brackets."""
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The port to bind."""
        return int(self.listen.rpartition(":")[2])


class ModuleSettings(BaseModel):
    """One ``[modules.NAME]`` table: supervision options; module options go in ``.config``."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = privileged(True)
    required: bool = privileged(
        default=False,
        description="READY is sent to systemd only once every required module runs; a broken "
        "required module stops the agent so its service manager can restart it.",
    )
    restart: RestartPolicy = privileged(RestartPolicy.ON_FAILURE)
    max_failures: int = privileged(default=5, ge=1, le=1000)
    failure_window_s: float = privileged(default=60.0, gt=0)
    backoff_initial_s: float = privileged(default=0.5, gt=0)
    backoff_max_s: float = privileged(default=60.0, gt=0)
    start_timeout_s: float = privileged(default=10.0, gt=0)
    stop_timeout_s: float = privileged(default=3.0, gt=0)
    isolation: Isolation | None = privileged(
        default=None,
        description="Run in the agent's loop ('in-loop') or a child process ('process'); "
        "default: what the module declares.",
    )
    cpu_affinity: list[int] | None = privileged(
        default=None,
        min_length=1,
        description="CPUs a process-isolated module's child may use (e.g. [1]).",
    )
    entry_point: str | None = privileged(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        description="Load the module from 'package.module:Class' instead of the entry-point "
        "table (for development).",
    )
    config: dict[str, Any] = tunable(
        default_factory=dict,
        description="Module options, validated by the module's own model (whose fields "
        "carry their own classes).",
    )

    @model_validator(mode="after")
    def _backoff_cap_not_below_start(self) -> ModuleSettings:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        return self


class AgentConfig(BaseModel):
    """The whole file: ``[agent]`` plus one ``[modules.NAME]`` table per module."""

    model_config = ConfigDict(extra="forbid")

    agent: AgentSettings = privileged(description="Local: read from the file only.")
    spool: SpoolSettings = privileged(
        default_factory=SpoolSettings, description="Local: read from the file only."
    )
    metrics: MetricsSettings | None = privileged(
        default=None,
        description="Prometheus endpoint; absent: no endpoint. Local: read from the file only.",
    )
    modules: dict[str, ModuleSettings] = tunable(
        default_factory=dict,
        description="Module tables; a desired state merges into them field by field.",
    )
