"""COVESA VSS paths for the signals the catalogue lists, where the meaning is known.

A catalogue entry may carry the signal's VSS path (``p``, docs/batch-format.md 3.2), so a
back end can file a vehicle's signals under the Vehicle Signal Specification without knowing
its DBC. Where a path comes from, in order:

1. the signal's own name, when it already is a VSS path (the CAN reader's ``vss_mapping``
   renamed it, docs/can.md);
2. :data:`KNOWN_PATHS`: the simulator DBC's signals (``simulator/data/vehicle.dbc``) and a
   few common DBC names, mapped by hand from the VSS specification (COVESA
   vehicle_signal_specification, ``spec/``; wheel instances as VSS 4.x names them,
   ``Row1.Wheel.Left``). A name is mapped only where the meaning and the sign convention
   agree; the unit may differ (the entry's ``u`` says what the values are in; e.g. the
   odometer is in km, VSS ``Vehicle.TraveledDistance`` in m).

Left out on purpose: ``PackCurrent`` (positive while discharging; VSS
``TractionBattery.CurrentCurrent`` is positive while charging), ``GearSelector`` (0-3 here;
VSS ``SelectedGear`` codes park as 126), the doors (VSS names them by driver side, which a
DBC does not say), the radar object, AEB, counter and checksum signals (no VSS signal).
"""

from __future__ import annotations

from edge_agent.can.vss import VSS_PATH

_WHEEL = "Vehicle.Chassis.Axle.Row{row}.Wheel.{side}.Speed"
_BATTERY = "Vehicle.Powertrain.TractionBattery."

KNOWN_PATHS: dict[str, str] = {
    # simulator/data/vehicle.dbc
    "EgoSpeed": "Vehicle.Speed",
    "LongitudinalAccel": "Vehicle.Acceleration.Longitudinal",
    "YawRate": "Vehicle.AngularVelocity.Yaw",  # both positive turning left (ISO 8855)
    "WheelSpeedFL": _WHEEL.format(row=1, side="Left"),
    "WheelSpeedFR": _WHEEL.format(row=1, side="Right"),
    "WheelSpeedRL": _WHEEL.format(row=2, side="Left"),
    "WheelSpeedRR": _WHEEL.format(row=2, side="Right"),
    "BrakePedalPosition": "Vehicle.Chassis.Brake.PedalPosition",
    "BrakeLightSwitch": "Vehicle.Chassis.Brake.IsBrakePedalPressed",  # the pedal switch
    "AcceleratorPedal": "Vehicle.Chassis.Accelerator.PedalPosition",
    "MotorSpeed": "Vehicle.Powertrain.ElectricMotor.Speed",
    "MotorTorque": "Vehicle.Powertrain.ElectricMotor.Torque",
    "HvSoc": _BATTERY + "StateOfCharge.Current",
    "PackVoltage": _BATTERY + "CurrentVoltage",
    "CellTempMax": _BATTERY + "Temperature.Max",
    "OutsideTemperature": "Vehicle.Exterior.AirTemperature",
    "Odometer": "Vehicle.TraveledDistance",
    "TailgateOpen": "Vehicle.Body.Trunk.Rear.IsOpen",
    # Common names in other DBCs
    "VehicleSpeed": "Vehicle.Speed",
    "LateralAccel": "Vehicle.Acceleration.Lateral",
    "SteeringWheelAngle": "Vehicle.Chassis.SteeringWheel.Angle",
    "EngineSpeed": "Vehicle.Powertrain.CombustionEngine.Speed",
    "Latitude": "Vehicle.CurrentLocation.Latitude",
    "Longitude": "Vehicle.CurrentLocation.Longitude",
}


def vss_path(signal: str) -> str:
    """The VSS path of ``signal`` where known, else "" (no guess)."""
    if signal.startswith("Vehicle.") and VSS_PATH.match(signal):
        return signal
    return KNOWN_PATHS.get(signal, "")
