"""OBD-II mode 01 (current data): which PIDs an ECU supports, and what a few of them say.

Formulas follow SAE J1979; each decoder takes the data bytes after the PID echo. A PID the
project cannot decode is still reported (hex) by the scan tool, never guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from edge_agent.modules.diagnostics.codes import MalformedResponse

SHOW_CURRENT_DATA = 0x01
SUPPORT_PIDS = (0x00, 0x20, 0x40, 0x60, 0x80, 0xA0, 0xC0)
# SAE J1979: one mode 01 request names at most six PIDs.
MAX_PIDS_PER_REQUEST = 6


@dataclass(frozen=True, slots=True)
class Pid:
    """A decodable PID: its signal name, unit, data length and formula."""

    number: int
    name: str
    unit: str
    length: int
    decode: Callable[[bytes], float]


def _pct(data: bytes) -> float:
    return round(data[0] * 100 / 255, 2)


def _temp(data: bytes) -> float:
    return float(data[0] - 40)


def _word(data: bytes) -> int:
    return data[0] << 8 | data[1]


PIDS: dict[int, Pid] = {
    pid.number: pid
    for pid in (
        Pid(0x04, "engine_load", "%", 1, _pct),
        Pid(0x05, "coolant_temperature", "degC", 1, _temp),
        Pid(0x0C, "engine_speed", "rpm", 2, lambda d: _word(d) / 4),
        Pid(0x0D, "vehicle_speed", "km/h", 1, lambda d: float(d[0])),
        Pid(0x0F, "intake_air_temperature", "degC", 1, _temp),
        Pid(0x11, "throttle_position", "%", 1, _pct),
        Pid(0x1F, "run_time_since_start", "s", 2, lambda d: float(_word(d))),
        Pid(0x2F, "fuel_level", "%", 1, _pct),
        Pid(0x42, "control_module_voltage", "V", 2, lambda d: _word(d) / 1000),
        Pid(0x46, "ambient_air_temperature", "degC", 1, _temp),
    )
}
PIDS_BY_NAME = {pid.name: pid for pid in PIDS.values()}


def supported_from_bitmap(base: int, bitmap: bytes) -> list[int]:
    """The PIDs a support answer for ``base`` (0x00, 0x20, ...) lists, itself excluded."""
    if len(bitmap) != 4:
        raise MalformedResponse(f"PID {base:02X}: support bitmap of {len(bitmap)} bytes, not 4")
    bits = int.from_bytes(bitmap, "big")
    return [base + i + 1 for i in range(32) if bits >> (31 - i) & 1]


def parse_pid_response(response: bytes, pid: int) -> bytes:
    """The data bytes of a mode 01 answer for ``pid``; MalformedResponse if it is not one."""
    if len(response) < 2 or response[0] != 0x40 + SHOW_CURRENT_DATA or response[1] != pid:
        raise MalformedResponse(f"PID {pid:02X}: answer does not echo mode 01 and the PID")
    data = bytes(response[2:])
    expected = pid_length(pid)
    if expected is not None and len(data) < expected:
        raise MalformedResponse(f"PID {pid:02X}: {len(data)} data bytes, {expected} expected")
    return data if expected is None else data[:expected]


def pid_length(pid: int) -> int | None:
    """Data bytes of ``pid``'s answer, when the project knows it."""
    if pid in SUPPORT_PIDS:
        return 4
    known = PIDS.get(pid)
    return None if known is None else known.length


def parse_pids_response(response: bytes, asked: Collection[int]) -> dict[int, bytes]:
    """The data of each PID in a mode 01 answer to a request for several ``asked`` PIDs.

    The answer repeats each asked PID the ECU supports, each followed by its data (J1979);
    lengths come from the project's table. MalformedResponse when the echo is wrong, a PID
    comes that was not asked (or twice), its length is unknown, or its data runs short.
    """
    if not response or response[0] != 0x40 + SHOW_CURRENT_DATA:
        raise MalformedResponse("mode 01: answer does not echo the mode")
    found: dict[int, bytes] = {}
    at = 1
    while at < len(response):
        pid = response[at]
        if pid not in asked or pid in found:
            raise MalformedResponse(f"mode 01: PID {pid:02X} answered but not asked (or twice)")
        length = pid_length(pid)
        if length is None:
            raise MalformedResponse(
                f"mode 01: PID {pid:02X} of unknown length in a multi-PID answer"
            )
        data = bytes(response[at + 1 : at + 1 + length])
        if len(data) < length:
            raise MalformedResponse(f"PID {pid:02X}: {len(data)} data bytes, {length} expected")
        found[pid] = data
        at += 1 + length
    return found


def decode_pid(pid: int, data: bytes) -> tuple[str, float | str, str]:
    """(signal name, value, unit) of ``pid``'s data; an unknown PID comes back as hex."""
    known = PIDS.get(pid)
    if known is None:
        return f"pid_{pid:02x}", data.hex(), ""
    return known.name, known.decode(data), known.unit
