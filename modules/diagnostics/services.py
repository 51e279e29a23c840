"""Which UDS/OBD services the agent sends on its own or for the cloud: read-only ones only.

Anything that writes, clears, flashes, resets or asks for security access is refused here,
before a frame goes out; the one exception is clearing DTCs, which a signed privileged
setting may enable and which then runs only while the vehicle is parked.
"""

from __future__ import annotations

# Services that only read (ISO 14229 and SAE J1979 numbers).
READ_ONLY = {
    0x01: "OBD show current data",
    0x02: "OBD show freeze frame data",
    0x03: "OBD show stored DTCs",
    0x07: "OBD show pending DTCs",
    0x09: "OBD request vehicle information",
    0x0A: "OBD show permanent DTCs",
    0x10: "DiagnosticSessionControl (default/extended only)",
    0x19: "ReadDTCInformation",
    0x22: "ReadDataByIdentifier",
    0x3E: "TesterPresent",
}
CLEAR_DTCS = 0x14
REFUSED = {
    0x04: "OBD clear DTCs",
    0x11: "ECUReset",
    0x14: "ClearDiagnosticInformation",
    0x27: "SecurityAccess",
    0x28: "CommunicationControl",
    0x2E: "WriteDataByIdentifier",
    0x2F: "InputOutputControlByIdentifier",
    0x31: "RoutineControl",
    0x34: "RequestDownload",
    0x36: "TransferData",
    0x3D: "WriteMemoryByAddress",
    0x85: "ControlDTCSetting",
}


class ServiceRefused(Exception):
    """A service outside the read-only allow-list was asked for; the message says which."""


def check_service(service: int, *, clear_allowed: bool = False) -> None:
    """Pass for an allowed service; raise ServiceRefused naming it otherwise."""
    if service in READ_ONLY or (service == CLEAR_DTCS and clear_allowed):
        return
    name = REFUSED.get(service, "not on the read-only allow-list")
    raise ServiceRefused(f"service 0x{service:02X} ({name}) refused: diagnostics are read-only")
