"""Reading recorded CAN traffic: candump ``.log`` (own lenient parser), ``.asc`` and ``.blf``.

Every reader yields python-can ``Message`` objects and counts into a :class:`LogStats`; bad
input is counted, never fatal. The candump parser reads one line at a time and skips a
malformed line (counted, with the first few reasons kept); python-can's ``.asc`` and ``.blf``
readers cannot resume after an error, so a broken record there ends the file, counted once.

candump line format (``candump -L``)::

    (1436509052.249713) vcan0 123#DEADBEEF          classic CAN, 3-digit id: standard
    (1436509052.249713) vcan0 12345678#             8-digit id: extended, no data
    (1436509052.249713) vcan0 123##1DEADBEEF        CAN FD: flags digit (1 BRS, 2 ESI), data
    (1436509052.249713) vcan0 123#R  / 123#R4       remote frame, optional length
    (1436509052.249713) vcan0 20000080#0000000000000000   error frame (CAN_ERR_FLAG set)

An optional ``_L`` suffix (classic length code 9..F) and a trailing ``T``/``R`` direction
mark are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import can

CAN_ERR_FLAG = 0x20000000
CAN_ERR_MASK = 0x1FFFFFFF
FD_LENGTHS = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64})
MAX_EXAMPLES = 5
SUFFIXES = (".log", ".asc", ".blf")
BLF_SIGNATURE = b"LOGG"

_LINE = re.compile(
    r"^\((?P<ts>\d+(?:\.\d*)?)\)\s+(?P<channel>\S+)\s+"
    r"(?P<id>[0-9A-Fa-f]{1,8})#(?P<payload>\S*)(?:\s+(?P<dir>[RT]))?\s*$"
)
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})*$")


class LogFormatError(Exception):
    """The log file cannot be read at all (missing, unknown kind, not a log)."""


@dataclass
class LogStats:
    """What reading a log found: frames, malformed records, and the first few reasons."""

    lines: int = 0
    frames: int = 0
    malformed: int = 0
    examples: list[str] = field(default_factory=list)

    def bad(self, where: str, reason: str) -> None:
        """Count one malformed record; keep its reason if it is among the first few."""
        self.malformed += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {reason}")


def _data(hex_text: str, what: str) -> bytes:
    clean = hex_text.replace(".", "")
    if not _HEX.match(clean):
        raise ValueError(f"{what} {hex_text!r} is not an even number of hex digits")
    return bytes.fromhex(clean)


def parse_candump_line(line: str) -> can.Message:
    """Parse one candump ``-L`` line into a ``can.Message``; raise ValueError saying why not."""
    match = _LINE.match(line.strip())
    if match is None:
        raise ValueError("not '(TIMESTAMP) CHANNEL ID#DATA'")
    id_text, payload = match.group("id"), match.group("payload")
    can_id = int(id_text, 16)
    extended = len(id_text) > 3
    common: dict[str, Any] = {
        "timestamp": float(match.group("ts")),
        "channel": match.group("channel"),
        "is_rx": match.group("dir") != "T",
        "check": False,
    }
    if extended and can_id & CAN_ERR_FLAG:
        data = _data(payload, "error data")
        if len(data) > 8:
            raise ValueError(f"error frame with {len(data)} data bytes (at most 8)")
        return can.Message(
            arbitration_id=can_id & CAN_ERR_MASK, is_error_frame=True, data=data, **common
        )
    if can_id > (CAN_ERR_MASK if extended else 0x7FF):
        kind = "extended" if extended else "standard"
        raise ValueError(f"id {id_text} out of range for a {kind} id")
    if payload.startswith("#"):  # CAN FD: one flags digit, then the data
        if len(payload) < 2 or payload[1] not in "0123456789abcdefABCDEF":
            raise ValueError("CAN FD frame without its flags digit")
        flags = int(payload[1], 16)
        data = _data(payload[2:], "FD data")
        if len(data) not in FD_LENGTHS:
            raise ValueError(f"{len(data)} bytes is not a CAN FD length")
        return can.Message(
            arbitration_id=can_id,
            is_extended_id=extended,
            is_fd=True,
            bitrate_switch=bool(flags & 1),
            error_state_indicator=bool(flags & 2),
            data=data,
            **common,
        )
    if payload[:1] in ("R", "r"):
        length_text = payload[1:].split("_", 1)[0]
        if length_text and (not length_text.isdigit() or int(length_text) > 8):
            raise ValueError(f"remote frame length {length_text!r} is not 0..8")
        return can.Message(
            arbitration_id=can_id,
            is_extended_id=extended,
            is_remote_frame=True,
            dlc=int(length_text or 0),
            **common,
        )
    data_text, _, dlc_text = payload.partition("_")
    data = _data(data_text, "data")
    if len(data) > 8:
        raise ValueError(f"{len(data)} data bytes in a classic frame (at most 8; FD uses ##)")
    if dlc_text and (len(dlc_text) != 1 or dlc_text not in "9abcdefABCDEF" or len(data) != 8):
        raise ValueError(f"length code suffix _{dlc_text} is not 9..F after 8 bytes")
    return can.Message(arbitration_id=can_id, is_extended_id=extended, data=data, **common)


def read_candump_lines(lines: Iterable[str], stats: LogStats) -> Iterator[can.Message]:
    """Parse candump lines, skipping (and counting) malformed ones and blank lines."""
    for number, line in enumerate(lines, start=1):
        stats.lines += 1
        if not line.strip():
            continue
        try:
            frame = parse_candump_line(line)
        except ValueError as error:
            stats.bad(f"line {number}", str(error))
            continue
        stats.frames += 1
        yield frame


def _read_candump(path: Path, stats: LogStats) -> Iterator[can.Message]:
    with path.open(encoding="utf-8", errors="replace", newline=None) as handle:
        yield from read_candump_lines(handle, stats)


def _read_python_can(
    reader: can.io.generic.MessageReader, stats: LogStats
) -> Iterator[can.Message]:
    try:
        iterator = iter(reader)
        while True:
            try:
                frame = next(iterator)
            except StopIteration:
                return
            except Exception as error:
                stats.bad(f"record {stats.frames + 1}", f"{type(error).__name__}: {error}")
                return
            stats.frames += 1
            yield frame
    finally:
        reader.stop()


def open_log(path: str | Path, stats: LogStats) -> Iterator[can.Message]:
    """Frames of the log at ``path`` by its suffix (.log, .asc, .blf); LogFormatError if unusable.

    The file is checked before the first frame is asked for, so a missing file or an unknown
    suffix fails here, not halfway through.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise LogFormatError(
            f"{path}: unknown log kind {suffix or '(none)'!r}; use .log, .asc or .blf"
        )
    if not path.is_file():
        raise LogFormatError(
            f"{path}: file not found" if not path.exists() else f"{path}: not a file"
        )
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as error:
        raise LogFormatError(f"{path}: cannot read: {error.strerror or error}") from None
    if suffix == ".log":
        return _read_candump(path, stats)
    if suffix == ".blf" and head != BLF_SIGNATURE:  # python-can's reader leaks its file then
        raise LogFormatError(f"{path}: not a readable .blf file (no LOGG signature)")
    reader_class = can.ASCReader if suffix == ".asc" else can.BLFReader
    try:
        reader = reader_class(str(path))
    except Exception as error:
        raise LogFormatError(f"{path}: not a readable {suffix} file: {error}") from None
    return _read_python_can(reader, stats)
