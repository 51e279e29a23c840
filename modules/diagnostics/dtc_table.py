"""What generic SAE J2012 codes mean, in our own words, for reports and the scan tool.

Only generic codes (second character 0, and a few 2/3 ranges the standard also fixes) are
listed: a manufacturer-specific code gets the description of its group instead. The wording
is the project's own; it names the fault the way a fleet operator would read it.
"""

from __future__ import annotations

from edge_agent.modules.diagnostics.codes import code_to_bytes

GENERIC_CODES: dict[str, str] = {
    # Powertrain: fuel and air metering
    "P0100": "Mass air flow sensor circuit fault",
    "P0101": "Mass air flow sensor reading implausible",
    "P0110": "Intake air temperature sensor circuit fault",
    "P0115": "Engine coolant temperature sensor circuit fault",
    "P0117": "Engine coolant temperature sensor reads too low (circuit)",
    "P0118": "Engine coolant temperature sensor reads too high (circuit)",
    "P0120": "Throttle position sensor A circuit fault",
    "P0128": "Coolant stays below thermostat regulating temperature",
    "P0130": "Upstream oxygen sensor (bank 1) circuit fault",
    "P0171": "Mixture too lean (bank 1)",
    "P0172": "Mixture too rich (bank 1)",
    # Powertrain: ignition and misfire
    "P0300": "Misfires detected on several or random cylinders",
    "P0301": "Misfire detected on cylinder 1",
    "P0302": "Misfire detected on cylinder 2",
    "P0303": "Misfire detected on cylinder 3",
    "P0304": "Misfire detected on cylinder 4",
    "P0325": "Knock sensor 1 circuit fault (bank 1)",
    "P0335": "Crankshaft position sensor A circuit fault",
    "P0340": "Camshaft position sensor A circuit fault (bank 1)",
    # Powertrain: emissions
    "P0401": "Exhaust gas recirculation flow too low",
    "P0420": "Catalyst efficiency under threshold (bank 1)",
    "P0440": "Evaporative emission system fault",
    "P0442": "Evaporative emission system: small leak found",
    "P0455": "Evaporative emission system: large leak found",
    # Powertrain: speed, idle, supply
    "P0500": "Vehicle speed sensor A fault",
    "P0505": "Idle air control system fault",
    "P0560": "System supply voltage fault",
    "P0561": "System supply voltage unstable",
    "P0562": "System supply voltage low",
    "P0563": "System supply voltage high",
    "P0600": "Serial communication link fault",
    "P0601": "Control module memory checksum error",
    "P0606": "Control module processor fault",
    # Powertrain: transmission
    "P0700": "Transmission control system reports a fault",
    "P0715": "Transmission input speed sensor A circuit fault",
    "P0720": "Transmission output speed sensor circuit fault",
    # Chassis
    "C0035": "Left front wheel speed sensor circuit fault",
    "C0040": "Right front wheel speed sensor circuit fault",
    "C0045": "Left rear wheel speed sensor circuit fault",
    "C0050": "Right rear wheel speed sensor circuit fault",
    "C0060": "Left front ABS solenoid circuit fault",
    "C0110": "ABS pump motor circuit fault",
    "C0121": "Brake valve relay circuit fault",
    "C0131": "Brake pressure sensor circuit fault",
    "C0161": "Brake switch circuit fault",
    # Body
    "B0001": "Driver frontal airbag deployment control fault",
    "B0020": "Passenger frontal airbag deployment control fault",
    "B0100": "Occupant classification system fault",
    # Network
    "U0001": "High-speed CAN communication bus fault",
    "U0073": "Control module communication bus A off",
    "U0100": "Lost communication with the engine control module",
    "U0101": "Lost communication with the transmission control module",
    "U0121": "Lost communication with the ABS control module",
    "U0129": "Lost communication with the brake system control module",
    "U0140": "Lost communication with the body control module",
    "U0155": "Lost communication with the instrument cluster",
    "U0235": "Lost communication with the front distance (cruise/radar) sensor",
    "U0401": "Invalid data received from the engine control module",
    "U0415": "Invalid data received from the ABS control module",
}

_GROUPS = {
    "P": "Powertrain",
    "C": "Chassis",
    "B": "Body",
    "U": "Network",
}


def describe(code: str) -> str:
    """A one-line description of ``code``: its own for a listed generic code, else its group."""
    code = code.strip().upper()
    code_to_bytes(code)  # raises ValueError for something that is not a DTC
    known = GENERIC_CODES.get(code)
    if known is not None:
        return known
    group = _GROUPS[code[0]]
    # J2012 keeps x0xxx generic for every group, and P2xxx too; the rest are the maker's.
    generic = code[1] == "0" or (code[0] == "P" and code[1] == "2")
    kind = "generic" if generic else "manufacturer"
    return f"{group} code, {kind}-defined (not in the project's table)"
