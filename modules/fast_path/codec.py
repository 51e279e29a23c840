"""Reading radar and ego frames and building the brake request frame, from the DBC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cantools

from edge_agent.modules.fast_path.config import FastPathSignals
from edge_agent.modules.fast_path.policy import EgoSample, RadarSample, Stage

KMH = 1 / 3.6


class CodecError(ValueError):
    """The DBC lacks a message or signal the fast path needs, or a frame does not decode."""


class FastPathCodec:
    """Decodes the two input messages and encodes the brake request, by configured names."""

    def __init__(self, dbc_path: Path, signals: FastPathSignals) -> None:
        try:
            database: Any = cantools.database.load_file(str(dbc_path), strict=False)
        except Exception as error:  # cantools raises many types for unreadable files
            raise CodecError(f"cannot load DBC {dbc_path}: {error}") from None
        self.signals = signals
        optional = [signals.in_path, signals.lateral, signals.width, signals.object_id]
        self.radar = self._message(
            database,
            signals.radar_message,
            [signals.distance, signals.relative_speed, signals.valid]
            + [name for name in optional if name],
        )
        ego_optional = [signals.yaw_rate, signals.acceleration]
        self.ego = self._message(
            database, signals.ego_message, [signals.ego_speed] + [n for n in ego_optional if n]
        )
        wanted = [signals.decel, signals.stage] + ([signals.counter] if signals.counter else [])
        self.brake = self._message(database, signals.brake_message, wanted)
        self._ego_scale = KMH if signals.ego_speed_unit == "km/h" else 1.0
        self._counter = 0

    @staticmethod
    def _message(database: Any, name: str, needed: list[str]) -> Any:
        try:
            message = database.get_message_by_name(name)
        except KeyError:
            raise CodecError(f"DBC has no message {name!r}") from None
        present = {signal.name for signal in message.signals}
        missing = [signal for signal in needed if signal not in present]
        if missing:
            raise CodecError(f"DBC message {name!r} lacks signals {missing}")
        return message

    @property
    def input_ids(self) -> tuple[int, int]:
        """Arbitration ids of the radar and ego messages (for kernel filters)."""
        return self.radar.frame_id, self.ego.frame_id

    def _decode(self, message: Any, data: bytes, what: str) -> dict[str, Any]:
        try:
            values: dict[str, Any] = message.decode(data, decode_choices=False)
        except Exception as error:  # cantools raises several types for short/odd frames
            raise CodecError(f"{what} frame does not decode: {error}") from None
        return values

    def decode_radar(self, data: bytes) -> tuple[float, float, bool]:
        """Distance (m), relative speed (m/s) and whether an object is reported.

        With an in-path signal configured, also whether the radar flags it in path.
        """
        sample = self.radar_sample(data, 0.0)
        return sample.distance_m, sample.relative_speed_mps, sample.valid

    def radar_sample(self, data: bytes, now: float) -> RadarSample:
        """One radar frame as the policy takes it, received at ``now``."""
        values = self._decode(self.radar, data, "radar")
        signals = self.signals
        valid = bool(values[signals.valid])
        if signals.in_path is not None:
            valid = valid and bool(values.get(signals.in_path, 1))

        def optional(name: str | None) -> float | None:
            return None if name is None else float(values[name])

        object_id = optional(signals.object_id)
        return RadarSample(
            now,
            float(values[signals.distance]),
            float(values[signals.relative_speed]),
            valid,
            lateral_m=optional(signals.lateral),
            width_m=optional(signals.width),
            object_id=None if object_id is None else int(object_id),
        )

    def decode_ego_speed(self, data: bytes) -> float:
        """Ego speed in m/s."""
        return self.ego_sample(data, 0.0).speed_mps

    def ego_sample(self, data: bytes, now: float) -> EgoSample:
        """One ego motion frame as the policy takes it, received at ``now``."""
        values = self._decode(self.ego, data, "ego")
        signals = self.signals
        yaw = 0.0 if signals.yaw_rate is None else float(values[signals.yaw_rate])
        acceleration = None if signals.acceleration is None else float(values[signals.acceleration])
        return EgoSample(
            now,
            float(values[signals.ego_speed]) * self._ego_scale,
            yaw_rate_dps=yaw,
            acceleration_mps2=acceleration,
        )

    def encode_brake(self, stage: Stage, decel_mps2: float) -> bytes:
        """The brake request frame's payload; the rolling counter advances on every call."""
        values: dict[str, float | int] = {
            self.signals.decel: decel_mps2,
            self.signals.stage: int(stage),
        }
        if self.signals.counter:
            values[self.signals.counter] = self._counter
            self._counter = (self._counter + 1) % 16
        payload: bytes = self.brake.encode(values, strict=False)
        return payload
