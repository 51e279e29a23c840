"""The vehicle's cyclic frames: which are due when, and what each carries."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import can

from edge_agent.simulator import dbc
from edge_agent.simulator.body import BodySignals
from edge_agent.simulator.radar import Radar, RadarReading
from edge_agent.simulator.vehicle import VehicleState

SignalValues = dict[str, float]
FrameValues = SignalValues | list[SignalValues] | None
"""One frame's values, several frames' (the radar's objects), or none this cycle."""

# First send time of each message (after the start): ECUs do not all start at the same instant.
PHASE_S = {
    dbc.EGO_MOTION: 0.010,
    dbc.RADAR_OBJECT: 0.005,
    dbc.BRAKE_PEDAL: 0.010,
    dbc.WHEEL_SPEEDS: 0.015,
    dbc.POWERTRAIN: 0.005,
    dbc.BATTERY_STATUS: 0.025,
    dbc.BODY_STATUS: 0.045,
}


@dataclass(slots=True)
class _Schedule:
    encoder: dbc.MessageEncoder
    cycle_s: float
    next_due_s: float
    counter: int = 0


class VehicleFrames:
    """Builds the frames the vehicle's ECUs send, each at its DBC cycle time.

    The radar is sampled whenever a RadarObject frame is due (50 Hz) and sends one frame per
    object it reports; ``None`` from the radar (a dropout) means no frame. ``rng`` adds the
    small noise of the chassis sensors.
    """

    def __init__(self, database: Any, radar: Radar, rng: random.Random) -> None:
        self.radar = radar
        self._rng = rng
        self._schedules = [
            _Schedule(
                dbc.MessageEncoder(message),
                message.cycle_time / 1000.0,
                PHASE_S.get(message.name, message.cycle_time / 1000.0),
            )
            for message in database.messages
            if message.cycle_time
        ]
        self._builders: dict[str, Callable[[VehicleState, BodySignals], FrameValues]] = {
            dbc.EGO_MOTION: self._ego_motion,
            dbc.RADAR_OBJECT: self._radar_object,
            dbc.BRAKE_PEDAL: self._brake_pedal,
            dbc.WHEEL_SPEEDS: self._wheel_speeds,
            dbc.POWERTRAIN: self._powertrain,
            dbc.BATTERY_STATUS: self._battery_status,
            dbc.BODY_STATUS: self._body_status,
        }
        self.last_radar: tuple[RadarReading, ...] | None = None

    @property
    def frame_ids(self) -> frozenset[int]:
        """Ids of every cyclic frame the vehicle sends."""
        return frozenset(schedule.encoder.frame_id for schedule in self._schedules)

    def due(self, state: VehicleState, body: BodySignals, *, silent: bool) -> list[can.Message]:
        """The frames due up to ``state.time_s``; with ``silent`` they are built but not sent."""
        frames: list[can.Message] = []
        now = state.time_s + 1e-9
        for schedule in self._schedules:
            while schedule.next_due_s <= now:
                schedule.next_due_s += schedule.cycle_s
                values = self._builders[schedule.encoder.name](state, body)
                if values is None or silent:
                    continue
                for each in values if isinstance(values, list) else [values]:
                    frames.append(self._encode(schedule, each))
        return frames

    def _encode(self, schedule: _Schedule, values: SignalValues) -> can.Message:
        encoder = schedule.encoder
        name = encoder.name
        if name == dbc.RADAR_OBJECT:
            values["RadarCounter"] = schedule.counter
        elif name == dbc.EGO_MOTION:
            values["EgoMotionCounter"] = schedule.counter
        schedule.counter = (schedule.counter + 1) % 16
        payload = bytearray(encoder.encode(values))
        if name == dbc.RADAR_OBJECT:
            payload[7] = dbc.frame_checksum(encoder.frame_id, bytes(payload))
        return can.Message(arbitration_id=encoder.frame_id, data=payload, is_extended_id=False)

    def _ego_motion(self, state: VehicleState, body: BodySignals) -> SignalValues:
        ego, gauss = state.ego, self._rng.gauss
        moving = ego.speed_mps > 0
        return {
            "EgoSpeed": ego.speed_mps * 3.6 + (gauss(0.0, 0.03) if moving else 0.0),
            "LongitudinalAccel": ego.acceleration_mps2 + gauss(0.0, 0.03),
            "YawRate": ego.yaw_rate_dps + gauss(0.0, 0.05),
        }

    def _radar_object(self, state: VehicleState, body: BodySignals) -> FrameValues:
        readings = self.radar.measure_all(state)
        self.last_radar = readings
        if readings is None:
            return None
        return [
            {
                "ObjectDistance": reading.distance_m,
                "ObjectRelativeSpeed": reading.relative_speed_mps,
                "ObjectLateralPosition": reading.lateral_m,
                "ObjectValid": float(reading.valid),
                "ObjectInPath": float(reading.in_path),
                "ObjectWidth": reading.width_m,
                "ObjectId": float(reading.object_id),
            }
            for reading in readings
        ]

    def _brake_pedal(self, state: VehicleState, body: BodySignals) -> SignalValues:
        return {
            "BrakePedalPosition": body.brake_pedal_pct,
            "BrakePressure": body.brake_pressure_bar,
            "BrakeLightSwitch": float(body.brake_pedal_pct > 2.0),
        }

    def _wheel_speeds(self, state: VehicleState, body: BodySignals) -> SignalValues:
        front_left, front_right, rear_left, rear_right = body.wheel_speeds_kmh
        return {
            "WheelSpeedFL": front_left,
            "WheelSpeedFR": front_right,
            "WheelSpeedRL": rear_left,
            "WheelSpeedRR": rear_right,
        }

    def _powertrain(self, state: VehicleState, body: BodySignals) -> SignalValues:
        return {
            "MotorSpeed": body.motor_rpm,
            "MotorTorque": body.motor_torque_nm,
            "AcceleratorPedal": body.accelerator_pct,
            "GearSelector": float(body.gear),
        }

    def _battery_status(self, state: VehicleState, body: BodySignals) -> SignalValues:
        return {
            "HvSoc": body.soc_pct,
            "PackVoltage": body.pack_voltage_v,
            "PackCurrent": body.pack_current_a,
            "CellTempMax": body.cell_temp_max_c,
        }

    def _body_status(self, state: VehicleState, body: BodySignals) -> SignalValues:
        front_left, front_right, rear_left, rear_right = body.doors_open
        return {
            "DoorOpenFL": float(front_left),
            "DoorOpenFR": float(front_right),
            "DoorOpenRL": float(rear_left),
            "DoorOpenRR": float(rear_right),
            "TailgateOpen": float(body.tailgate_open),
            "Headlights": float(body.headlights),
            "OutsideTemperature": body.outside_temperature_c,
            "Odometer": body.odometer_km,
        }
