"""Options of the ``cloud-link`` module (the ``[modules.cloud-link.config]`` table)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from edge_agent.config.classes import privileged, tunable

DEFAULT_TLS_DIR = Path("/etc/edge-agent/tls")
NETWORK_TOPIC = "cloud/network"
# The largest legitimate downstream message is a desired state (256 KiB, see
# edge_agent.config.desired); the rest is room for the topic and properties.
DEFAULT_MAX_PACKET_BYTES = 256 * 1024 + 16 * 1024


class TlsSettings(BaseModel):
    """Mutual TLS: the CA that signed the broker, and this vehicle's certificate and key.

    The client certificate's common name should be the vehicle id (the broker maps it to the
    MQTT username its ACL confines). The broker's certificate must name ``host``.
    """

    model_config = ConfigDict(extra="forbid")

    ca_file: Path = privileged(default=DEFAULT_TLS_DIR / "ca.pem", description="CA of the broker.")
    cert_file: Path = privileged(
        default=DEFAULT_TLS_DIR / "client.pem", description="This vehicle's certificate (PEM)."
    )
    key_file: Path = privileged(
        default=DEFAULT_TLS_DIR / "client.key", description="This vehicle's private key (PEM)."
    )
    min_version: Literal["1.2", "1.3"] = privileged(
        default="1.2", description="Oldest TLS version accepted."
    )


class LinkProfile(BaseModel):
    """What one kind of network may cost: a byte budget per window, or unmetered.

    Events and control records (reported state, command replies, OTA status) always go and
    count against the budget. Telemetry of high priority is held back once the budget is
    spent; low-priority telemetry already once it has used its ``low_priority_share``.
    Held-back records stay in the spool (where its quotas and TTLs apply) until the budget
    refills or a cheaper link becomes active.
    """

    model_config = ConfigDict(extra="forbid")

    budget_bytes: int | None = tunable(
        default=None, gt=0, description="Bytes per window; unset: unmetered (no hold-back)."
    )
    window_s: float = tunable(default=86_400.0, gt=0, description="The budget refills over this.")
    low_priority_share: float = tunable(
        default=0.5, ge=0, le=1, description="Share of the budget low-priority telemetry may use."
    )


class CloudLinkConfig(BaseModel):
    """Broker, security, session, timing, uplink window and cost profiles of the cloud link."""

    model_config = ConfigDict(extra="forbid")

    host: str = privileged(
        min_length=1, description="Broker host name (must match its certificate)."
    )
    port: int = privileged(default=8883, ge=1, le=65535)
    tls: TlsSettings | Literal[False] = privileged(
        default_factory=TlsSettings,
        description="Mutual TLS settings; `false` only for a local plaintext bench (logged "
        "loudly at every connection).",
    )
    keepalive_s: int = privileged(
        default=5,
        ge=1,
        le=600,
        description="MQTT keepalive; a dead link is noticed within about 2 x keepalive_s + 1 s.",
    )
    connect_timeout_s: float = privileged(
        default=10.0, gt=0, le=120, description="TCP connect, TLS handshake and CONNACK, each."
    )
    operation_timeout_s: float = privileged(
        default=10.0, gt=0, le=300, description="Longest wait for a PUBACK or SUBACK."
    )
    mqtt_version: Literal["5", "3.1.1"] = privileged(
        default="5",
        description="MQTT protocol version. 3.1.1 is for brokers without MQTT 5 (Azure IoT "
        "Hub, older clusters); it loses the message-id user property (the cloud then "
        "de-duplicates telemetry by the batch's own id, other records may arrive twice), "
        "session_expiry_s (the broker's own session settings apply), the will's expiry and "
        "PUBACK reason codes.",
    )
    max_packet_bytes: int = privileged(
        default=DEFAULT_MAX_PACKET_BYTES,
        ge=4 * 1024,
        le=256 * 1024 * 1024,
        description="MQTT 5 Maximum Packet Size announced in CONNECT: the broker drops "
        "anything larger for this vehicle instead of sending it. MQTT 3.1.1 has no such "
        "property; there the broker's own `max_packet_size` is the limit.",
    )
    session_expiry_s: int = privileged(
        default=7 * 86_400,
        ge=0,
        description="How long the broker keeps the session (and "
        "queued commands) while the vehicle is offline (MQTT v5 session expiry).",
    )
    reconnect_initial_s: float = privileged(default=1.0, gt=0, le=3600)
    reconnect_max_s: float = privileged(default=60.0, gt=0, le=3600)
    reconnect_probe_interval_s: float = privileged(
        default=0.5,
        ge=0,
        le=60,
        description="While waiting to reconnect, try a plain TCP connect to the broker this "
        "often and reconnect at once when it answers after it did not (0: backoff only).",
    )
    reconnect_probe_timeout_s: float = privileged(
        default=1.0,
        gt=0,
        le=60,
        description="Longest wait for one reconnect probe's TCP connect.",
    )
    inflight_window: int = tunable(
        default=64, ge=1, le=1000, description="QoS 1 publishes awaiting PUBACK at once."
    )
    poll_interval_s: float = tunable(
        default=0.5,
        gt=0,
        le=60,
        description="How often an idle uplink looks for records "
        "appended to the spool by other modules.",
    )
    command_timeout_s: float = tunable(
        default=10.0,
        gt=0,
        le=300,
        description="Longest a command may run (a request may ask for less).",
    )
    apply_timeout_s: float = tunable(
        default=60.0,
        gt=0,
        le=600,
        description="Longest wait for the supervisor to apply a desired state.",
    )
    reported_min_interval_s: float = tunable(
        default=5.0,
        ge=0,
        le=3600,
        description="Health changes update the reported state at "
        "most this often (desired-state results and reconnects at once).",
    )
    links: dict[str, LinkProfile] = tunable(
        default_factory=lambda: {"default": LinkProfile()},
        description="Named link profiles (e.g. cellular, wifi).",
    )
    active_link: str = tunable(
        default="default",
        description=f"Profile in force at start; bus topic {NETWORK_TOPIC} "
        '{"link": NAME} switches it.',
    )
    spool_path: Path | None = privileged(
        default=None,
        description="Only when the agent hands the module no spool: open this "
        "one (default: spool.db in the module's state directory).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CloudLinkConfig:
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be at least reconnect_initial_s")
        if self.active_link not in self.links:
            raise ValueError(
                f"active_link {self.active_link!r} is not one of the links "
                f"({', '.join(sorted(self.links)) or 'none defined'})"
            )
        return self

    def same_connection(self, other: CloudLinkConfig) -> bool:
        """Whether ``other`` differs only in options applied without reconnecting."""
        live = {
            "links",
            "active_link",
            "inflight_window",
            "poll_interval_s",
            "command_timeout_s",
            "apply_timeout_s",
            "reported_min_interval_s",
        }
        return self.model_dump(exclude=live) == other.model_dump(exclude=live)
