"""Diagnostic trouble codes: the SAE J2012 two-byte form and its readable name (``P0562``).

A UDS DTC (ISO 14229) is three bytes: the J2012 two bytes and a failure-type byte; an OBD-II
DTC (modes 03/07/0A) is the two bytes alone. The two top bits pick the system letter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LETTERS = "PCBU"
_CODE = re.compile(r"^([PCBU])([0-3])([0-9A-F]{3})$")


class MalformedResponse(ValueError):
    """An ECU's answer that cannot be decoded (wrong length, wrong echo): counted, not raised on."""


def code_from_bytes(high: int, low: int) -> str:
    """The readable code (``P0562``) of the J2012 two bytes ``high``, ``low``."""
    letter = _LETTERS[(high >> 6) & 0x03]
    return f"{letter}{(high >> 4) & 0x03}{high & 0x0F:X}{low:02X}"


def code_to_bytes(code: str) -> bytes:
    """The J2012 two bytes of a readable code; ValueError naming the code if it is not one."""
    match = _CODE.match(code.strip().upper())
    if match is None:
        raise ValueError(f"not a DTC: {code!r} (expected a letter P/C/B/U, a digit 0-3, 3 hex)")
    letter, digit, rest = match.groups()
    value = (_LETTERS.index(letter) << 14) | (int(digit) << 12) | int(rest, 16)
    return value.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class UdsDtc:
    """A DTC as UDS reports it: code, failure-type byte and status byte."""

    code: str
    failure_type: int
    status: int

    @classmethod
    def from_id(cls, dtc_id: int, status: int) -> UdsDtc:
        """From udsoncan's 24-bit DTC id and status byte."""
        return cls(
            code_from_bytes((dtc_id >> 16) & 0xFF, (dtc_id >> 8) & 0xFF), dtc_id & 0xFF, status
        )

    @property
    def dtc_id(self) -> int:
        """The 24-bit DTC id (J2012 bytes, then failure type)."""
        return int.from_bytes(code_to_bytes(self.code), "big") << 8 | self.failure_type


# ISO 14229-1 DTC status bits, lowest first, as they appear in reports.
STATUS_BITS = (
    "test_failed",
    "test_failed_this_operation_cycle",
    "pending",
    "confirmed",
    "test_not_completed_since_last_clear",
    "test_failed_since_last_clear",
    "test_not_completed_this_operation_cycle",
    "warning_indicator_requested",
)


def status_names(status: int) -> list[str]:
    """The names of the status bits set in ``status``."""
    return [name for bit, name in enumerate(STATUS_BITS) if status >> bit & 1]


def parse_obd_dtcs(response: bytes, mode: int) -> list[str]:
    """The codes in an OBD-II mode 03/07/0A answer (``0x40 + mode``, count, two bytes each).

    On CAN the answer carries the count byte first (ISO 15765-4); all-zero pairs are padding.
    Raises MalformedResponse when the echo, the count or the length is wrong.
    """
    if len(response) < 2 or response[0] != 0x40 + mode:
        raise MalformedResponse(f"mode {mode:02X}: answer does not echo the mode")
    count = response[1]
    body = response[2:]
    if len(body) < 2 * count or len(body) % 2:
        raise MalformedResponse(f"mode {mode:02X}: {count} DTCs announced, {len(body)} bytes")
    pairs = [body[i : i + 2] for i in range(0, 2 * count, 2)]
    return [code_from_bytes(p[0], p[1]) for p in pairs if p != b"\x00\x00"]
