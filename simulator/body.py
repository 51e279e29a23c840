"""Powertrain, battery and body signals for telemetry, derived from the ego's motion.

None of this feeds back into the physics; it makes the telemetry look like a real car's: the
battery drains with the power the motor delivers, the pack voltage sags under load, the cells warm
up, the outside temperature drifts, doors open while parked.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field

from edge_agent.simulator.profiles import TimeWindows
from edge_agent.simulator.vehicle import DRIVER_MAX_ACCEL_MPS2, DRIVER_MAX_BRAKE_MPS2, VehicleState

MASS_KG = 1850.0
WHEEL_RADIUS_M = 0.33
GEAR_RATIO = 9.0
DRAG_AREA_M2 = 0.62  # drag coefficient times frontal area
ROLLING_RESISTANCE = 0.011
AIR_DENSITY = 1.2
GRAVITY = 9.81
DRIVE_EFFICIENCY = 0.9
REGEN_TORQUE_LIMIT_NM = -120.0
MOTOR_TORQUE_LIMIT_NM = 400.0
CELLS_IN_SERIES = 96
PACK_CAPACITY_AH = 200.0
PACK_RESISTANCE_OHM = 0.08
AUXILIARY_LOAD_W = 450.0
HEADLIGHT_LOAD_W = 110.0
TRACK_WIDTH_M = 1.6
BAR_PER_MPS2 = 11.0


class Gear(enum.IntEnum):
    """GearSelector values of the DBC."""

    PARK = 0
    REVERSE = 1
    NEUTRAL = 2
    DRIVE = 3


class Headlights(enum.IntEnum):
    """Headlights values of the DBC."""

    OFF = 0
    LOW = 1
    HIGH = 2


@dataclass(frozen=True, slots=True)
class BodyScript:
    """What a scenario scripts for the body and battery (the rest follows from driving)."""

    initial_soc_pct: float = 78.0
    outside_temperature_c: float = 17.5
    initial_cell_temp_c: float = 24.0
    odometer_km: float = 12_843.2
    parked: TimeWindows = field(default_factory=TimeWindows)
    driver_door_open: TimeWindows = field(default_factory=TimeWindows)
    tailgate_open: TimeWindows = field(default_factory=TimeWindows)
    low_beam: TimeWindows = field(default_factory=TimeWindows)
    high_beam: TimeWindows = field(default_factory=TimeWindows)


@dataclass(slots=True)
class BodySignals:
    """The current powertrain, battery and body values (physical units of the DBC)."""

    motor_rpm: float = 0.0
    motor_torque_nm: float = 0.0
    accelerator_pct: float = 0.0
    gear: Gear = Gear.DRIVE
    brake_pedal_pct: float = 0.0
    brake_pressure_bar: float = 0.0
    soc_pct: float = 0.0
    pack_voltage_v: float = 0.0
    pack_current_a: float = 0.0
    cell_temp_max_c: float = 0.0
    outside_temperature_c: float = 0.0
    odometer_km: float = 0.0
    doors_open: tuple[bool, bool, bool, bool] = (False, False, False, False)
    tailgate_open: bool = False
    headlights: Headlights = Headlights.OFF
    wheel_speeds_kmh: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


def open_circuit_voltage(soc_pct: float) -> float:
    """Pack voltage without load: cells from 3.3 V empty to 4.15 V full, slightly curved."""
    soc = min(max(soc_pct, 0.0), 100.0) / 100.0
    cell = 3.3 + 0.7 * soc + 0.15 * soc**3
    return cell * CELLS_IN_SERIES


class BodyModel:
    """Updates :class:`BodySignals` from the vehicle state; sensor noise comes from ``rng``."""

    def __init__(self, script: BodyScript, rng: random.Random) -> None:
        self.script = script
        self._rng = rng
        self._ambient_drift_c = 0.0
        self.signals = BodySignals(
            soc_pct=script.initial_soc_pct,
            pack_voltage_v=open_circuit_voltage(script.initial_soc_pct),
            cell_temp_max_c=script.initial_cell_temp_c,
            outside_temperature_c=script.outside_temperature_c,
            odometer_km=script.odometer_km,
        )

    def update(self, state: VehicleState, dt: float) -> BodySignals:
        """Advance the body by ``dt`` seconds to match ``state``; return the signals."""
        signals, script, gauss = self.signals, self.script, self._rng.gauss
        time_s, ego = state.time_s, state.ego
        speed = ego.speed_mps
        parked = script.parked.contains(time_s) and speed == 0.0
        signals.gear = Gear.PARK if parked else Gear.DRIVE

        resistance = 0.5 * AIR_DENSITY * DRAG_AREA_M2 * speed**2
        resistance += MASS_KG * GRAVITY * ROLLING_RESISTANCE if speed > 0 else 0.0
        wheel_force = MASS_KG * ego.acceleration_mps2 + resistance
        torque = wheel_force * WHEEL_RADIUS_M / GEAR_RATIO
        torque = min(max(torque, REGEN_TORQUE_LIMIT_NM), MOTOR_TORQUE_LIMIT_NM)
        omega = speed / WHEEL_RADIUS_M * GEAR_RATIO
        signals.motor_torque_nm = torque + gauss(0.0, 0.5) if speed > 0 else 0.0
        signals.motor_rpm = omega * 60 / (2 * math.pi)

        command = ego.driver_command_mps2
        signals.accelerator_pct = (
            min(100.0, 100.0 * (command + resistance / MASS_KG) / (DRIVER_MAX_ACCEL_MPS2 + 1.0))
            if command > 0 and state.brake.deceleration_mps2 < 0.05
            else 0.0
        )
        signals.brake_pedal_pct = (
            min(100.0, 100.0 * -command / DRIVER_MAX_BRAKE_MPS2 * 0.6) if command < -0.05 else 0.0
        )
        braking = max(-ego.acceleration_mps2, 0.0) if speed > 0 else 0.0
        if speed == 0.0 and not parked:
            braking = max(braking, 1.5)  # held at a standstill
        signals.brake_pressure_bar = min(250.0, braking * BAR_PER_MPS2)

        self._update_battery(torque * omega, dt)
        self._update_body(state, dt)
        left = speed - math.radians(ego.yaw_rate_dps) * TRACK_WIDTH_M / 2
        right = speed + math.radians(ego.yaw_rate_dps) * TRACK_WIDTH_M / 2
        signals.wheel_speeds_kmh = tuple(  # type: ignore[assignment]
            max(0.0, wheel * 3.6 * scale + gauss(0.0, 0.03)) if speed > 0 else 0.0
            for wheel, scale in ((left, 1.002), (right, 0.999), (left, 0.998), (right, 1.001))
        )
        return signals

    def _update_battery(self, mechanical_power_w: float, dt: float) -> None:
        signals = self.signals
        if mechanical_power_w >= 0:
            electric_w = mechanical_power_w / DRIVE_EFFICIENCY
        else:
            electric_w = mechanical_power_w * DRIVE_EFFICIENCY
        electric_w += AUXILIARY_LOAD_W
        if signals.headlights is not Headlights.OFF:
            electric_w += HEADLIGHT_LOAD_W
        ocv = open_circuit_voltage(signals.soc_pct)
        current = electric_w / ocv
        signals.pack_current_a = current + self._rng.gauss(0.0, 0.3)
        signals.pack_voltage_v = ocv - current * PACK_RESISTANCE_OHM + self._rng.gauss(0.0, 0.1)
        signals.soc_pct = max(0.0, signals.soc_pct - current * dt / (PACK_CAPACITY_AH * 36.0))
        heating = current**2 * PACK_RESISTANCE_OHM / 45_000.0
        cooling = (signals.cell_temp_max_c - self.script.outside_temperature_c) / 3_000.0
        signals.cell_temp_max_c += (heating - cooling) * dt

    def _update_body(self, state: VehicleState, dt: float) -> None:
        signals, script, time_s = self.signals, self.script, state.time_s
        # The outside temperature wanders slowly (a random walk pulled back to the script's).
        self._ambient_drift_c += self._rng.gauss(0.0, 0.02 * math.sqrt(dt)) - (
            self._ambient_drift_c * dt / 600.0
        )
        signals.outside_temperature_c = (
            script.outside_temperature_c + self._ambient_drift_c + self._rng.gauss(0.0, 0.1)
        )
        signals.odometer_km += state.ego.speed_mps * dt / 1000.0
        signals.doors_open = (script.driver_door_open.contains(time_s), False, False, False)
        signals.tailgate_open = script.tailgate_open.contains(time_s)
        if script.high_beam.contains(time_s):
            signals.headlights = Headlights.HIGH
        elif script.low_beam.contains(time_s):
            signals.headlights = Headlights.LOW
        else:
            signals.headlights = Headlights.OFF
