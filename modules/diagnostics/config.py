"""Options of the ``diagnostics`` module: which bus, which ECUs, what to read, how often."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from edge_agent.can.types import SignalValue
from edge_agent.config.classes import privileged, tunable
from edge_agent.modules.diagnostics.obd import PIDS_BY_NAME


class EcuConfig(BaseModel):
    """One ECU the module talks to (11-bit normal addressing)."""

    model_config = ConfigDict(extra="forbid")

    name: str = privileged(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Name in topics.")
    request_id: int = privileged(ge=0, le=0x7FF, description="CAN id the ECU listens on.")
    response_id: int = privileged(ge=0, le=0x7FF, description="CAN id the ECU answers on.")
    dtcs: Literal["uds", "obd", "both"] = privileged(
        default="uds",
        description="How its DTCs are read: UDS ReadDTCInformation (physical), OBD-II modes "
        "03/07/0A (functional, 0x7DF), or both.",
    )


class DidSignal(BaseModel):
    """A UDS data identifier read periodically and published as a signal."""

    model_config = ConfigDict(extra="forbid")

    ecu: str = tunable(description="Configured ECU name.")
    did: int = tunable(ge=0, le=0xFFFF, description="Data identifier.")
    signal: str = tunable(pattern=r"^[A-Za-z0-9_.]{1,64}$", description="Signal name.")
    decode: Literal["uint", "ascii", "hex"] = tunable(default="uint")


def decode_did(signal: DidSignal, data: bytes) -> SignalValue:
    """A DID's bytes as the configured kind of value."""
    if signal.decode == "ascii":
        return data.decode("ascii", "replace").rstrip("\x00 ")
    if signal.decode == "hex":
        return data.hex()
    return int.from_bytes(data, "big")


def _default_ecus() -> list[EcuConfig]:
    return [
        EcuConfig(name="engine", request_id=0x7E0, response_id=0x7E8, dtcs="both"),
        EcuConfig(name="brake", request_id=0x7E2, response_id=0x7EA),
    ]


class DiagnosticsConfig(BaseModel):
    """Options of the ``diagnostics`` module (see docs/diagnostics.md)."""

    model_config = ConfigDict(extra="forbid")

    interface: str = privileged(default="socketcan", min_length=1, description="python-can iface.")
    channel: str = privileged(description="python-can channel (the CAN reader's bus).")
    bus_name: str = privileged(
        default="diag",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="Bus name in signal topics: can/BUS/decoded/ECU.",
    )
    bitrate: int = privileged(default=500_000, gt=0, description="Bitrate, for the bus share.")
    ecus: list[EcuConfig] = privileged(default_factory=_default_ecus, min_length=1)
    bus_share: float = tunable(
        default=0.05, gt=0, le=0.2, description="Largest share of the bus diagnostics may take."
    )
    timeout_s: float = tunable(default=0.5, gt=0, le=10, description="Wait per answer (P2).")
    dtc_interval_s: float = tunable(default=10.0, gt=0, le=3600)
    signal_interval_s: float = tunable(default=1.0, gt=0, le=3600)
    uds_session: Literal["default", "extended"] = tunable(
        default="default",
        description="UDS session for DTC and DID reads; extended is kept open by TesterPresent.",
    )
    keep_alive_s: float = tunable(
        default=2.0, gt=0, lt=5.0, description="TesterPresent interval (under the 5 s S3)."
    )
    dtc_status_mask: int = tunable(default=0xFF, ge=1, le=0xFF)
    pids: list[str] = tunable(
        default_factory=lambda: ["engine_speed", "coolant_temperature", "control_module_voltage"],
        description="OBD mode 01 PIDs (by name), asked functionally (0x7DF) of every ECU.",
    )
    dids: list[DidSignal] = tunable(default_factory=list)
    clear_dtcs_when_parked: bool = privileged(
        default=False,
        description="Allow the clear_dtcs cloud command, and only while the vehicle is parked.",
    )

    @field_validator("pids")
    @classmethod
    def _known_pids(cls, pids: list[str]) -> list[str]:
        unknown = [pid for pid in pids if pid not in PIDS_BY_NAME]
        if unknown:
            raise ValueError(f"unknown PID {unknown[0]!r} (known: {', '.join(PIDS_BY_NAME)})")
        return pids
