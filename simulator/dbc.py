"""The simulator's vehicle DBC: where it lives, loading it strictly, encoding with clamping."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import cantools

VEHICLE_DBC = "vehicle.dbc"

AEB_BRAKE_REQUEST = "AebBrakeRequest"
RADAR_OBJECT = "RadarObject"
EGO_MOTION = "EgoMotion"
BRAKE_PEDAL = "BrakePedal"
WHEEL_SPEEDS = "WheelSpeeds"
POWERTRAIN = "Powertrain"
BATTERY_STATUS = "BatteryStatus"
BODY_STATUS = "BodyStatus"

AEB_STAGES = {0: "none", 1: "warn", 2: "partial", 3: "full"}
"""The AebStage values of the DBC."""


def vehicle_dbc_path() -> Path:
    """Path of the DBC the simulator sends with (installed as package data)."""
    return Path(str(resources.files("edge_agent.simulator").joinpath("data", VEHICLE_DBC)))


@functools.cache
def load_vehicle_dbc() -> Any:
    """The vehicle DBC as a cantools database, loaded strictly (any defect raises)."""
    return cantools.database.load_file(vehicle_dbc_path(), strict=True)


def frame_checksum(frame_id: int, payload: bytes) -> int:
    """The checksum of the last byte: 0xFF minus (bytes 0..6 + both frame id bytes) mod 256."""
    total = sum(payload[:7]) + (frame_id & 0xFF) + ((frame_id >> 8) & 0xFF)
    return 0xFF - (total & 0xFF)


class MessageEncoder:
    """Encodes one DBC message from physical values, clamping each to its signal's range."""

    def __init__(self, message: Any) -> None:
        self.message = message
        self.frame_id: int = message.frame_id
        self.name: str = message.name
        self._limits = {signal.name: (signal.minimum, signal.maximum) for signal in message.signals}

    def encode(self, values: Mapping[str, float]) -> bytes:
        """The payload for ``values`` (missing signals are zero; out-of-range values clamped)."""
        clamped: dict[str, float] = {}
        for name, (low, high) in self._limits.items():
            value = float(values.get(name, 0.0))
            if low is not None:
                value = max(value, low)
            if high is not None:
                value = min(value, high)
            clamped[name] = value
        data: bytes = self.message.encode(clamped, scaling=True, padding=False, strict=False)
        return data
