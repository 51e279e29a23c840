"""Options of the CAN reader module: one entry per bus, plus reconnect and reporting pacing."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from edge_agent.can.resources import resolve_data_path
from edge_agent.config.classes import privileged, tunable


def _existing_file(value: str) -> str:
    path = resolve_data_path(value)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    return value


DataFile = Annotated[str, AfterValidator(_existing_file)]


class BusConfig(BaseModel):
    """One CAN bus: how to open it with python-can, its DBC, and what to publish."""

    model_config = ConfigDict(extra="forbid")

    name: str = privileged(
        pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Name in topics: can/NAME/decoded/..."
    )
    interface: str = privileged(
        default="socketcan", min_length=1, description="python-can interface: socketcan, ..."
    )
    channel: str | int = privileged(
        description="python-can channel: can0, vcan0, PCAN_USBBUS1, ..."
    )
    bitrate: int | None = privileged(default=None, gt=0, description="Nominal bitrate (bit/s).")
    data_bitrate: int | None = privileged(default=None, gt=0, description="CAN FD data bitrate.")
    fd: bool = privileged(default=False, description="Open the bus in CAN FD mode.")
    dbc: DataFile = privileged(
        description="DBC file (or package:PKG/path/in/it); loaded leniently."
    )
    vss_mapping: DataFile | None = privileged(
        default=None, description="TOML/JSON file: signal (or MESSAGE.SIGNAL) -> VSS path."
    )
    messages: list[str] | None = privileged(
        default=None, description="Decode only these DBC messages (default: all usable ones)."
    )
    publish_raw: bool = privileged(
        default=False, description="Also publish frames on can/NAME/raw."
    )
    receive_own_messages: bool = privileged(
        default=False, description="Receive frames this process sends (python-can option)."
    )
    kernel_filters: Literal["auto", "on", "off"] = privileged(
        default="auto",
        description="Pass the DBC's ids as python-can can_filters. auto: only for socketcan, "
        "which filters in the kernel (elsewhere python-can may filter in Python, per frame).",
    )
    reader: Literal["auto", "thread"] = privileged(
        default="auto",
        description="auto: loop.add_reader on the bus's file descriptor when it has one, "
        "else a reader thread; thread: always a reader thread.",
    )
    options: dict[str, Any] = privileged(
        default_factory=dict, description="Extra keyword arguments for python-can's can.Bus."
    )
    batch_max_frames: int = privileged(default=256, ge=1, le=10_000)
    batch_window_s: float = privileged(default=0.002, ge=0, le=0.1)
    max_pending: int = privileged(default=8192, ge=16, le=1_000_000)
    bus_off_reopen_s: float = privileged(
        default=2.0, gt=0, description="Reopen the bus when it stays bus-off this long."
    )


class CanReaderConfig(BaseModel):
    """Options of the ``can-reader`` module."""

    model_config = ConfigDict(extra="forbid")

    buses: list[BusConfig] = privileged(
        min_length=1,
        description="The CAN buses (interfaces, channels, DBCs): a bus table "
        "changes only as a whole, through a signed config target.",
    )
    reconnect_initial_s: float = tunable(default=0.5, gt=0)
    reconnect_max_s: float = tunable(default=30.0, gt=0)
    stats_interval_s: float = tunable(default=1.0, gt=0, le=60)
    bad_frame_log_interval_s: float = tunable(
        default=10.0, gt=0, description="At most one log line per bus and kind of bad frame."
    )
    send_timeout_s: float = privileged(default=0.1, ge=0, le=10)

    @model_validator(mode="after")
    def _check(self) -> CanReaderConfig:
        names = [bus.name for bus in self.buses]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"bus names must be unique (repeated: {', '.join(duplicates)})")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be at least reconnect_initial_s")
        return self
