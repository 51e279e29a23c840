"""Reading recorded CAN traffic: every format python-can's ``LogReader`` reads, and ``.gz``.

candump ``.log`` goes through our own lenient parser; ``.asc``, ``.blf``, ``.csv``, ``.db``
(SQLite), ``.trc`` and ``.mf4`` (when asammdf is installed) through python-can's reader for
each; any of them but ``.db`` may be gzip-compressed (``name.asc.gz``). Every reader yields
python-can ``Message`` objects and counts into a :class:`LogStats`; bad input is counted,
never fatal. The candump parser reads one line at a time and skips a malformed line (counted,
with the first few reasons kept); python-can's readers cannot resume after an error, so a
broken record there ends the file, counted once. A record python-can only warns about (a TRC
line it skips, say) is counted the same way, not logged (:mod:`edge_agent.can.reader_warnings`).

candump line format (``candump -L``)::

    (1436509052.249713) vcan0 123#DEADBEEF          classic CAN, 3-digit id: standard
    (1436509052.249713) vcan0 12345678#             8-digit id: extended, no data
    (1436509052.249713) vcan0 123##1DEADBEEF        CAN FD: flags digit (1 BRS, 2 ESI), data
    (1436509052.249713) vcan0 123#R  / 123#R4       remote frame, optional length
    (1436509052.249713) vcan0 20000080#0000000000000000   error frame (CAN_ERR_FLAG set)

An optional ``_L`` suffix (classic length code 9..F) and a trailing ``T``/``R`` direction
mark are accepted.

Memory is bounded whatever the file holds: BLF containers are inflated under limits before
python-can sees them (:mod:`edge_agent.can.blf`), a ``.gz`` file may expand only so far
(:mod:`edge_agent.can.gzipped`), and a text line longer than
:data:`MAX_LINE_CHARS` is refused, not read whole. A log that yields no frame is an error for
its callers; :func:`why_no_frames` says why (empty, truncated at byte N, not that kind of
file). A reader for another python-can format plugs in the same way: open the file, wrap it
(:func:`bounded_lines` for text), hand it to the python-can reader class.
"""

from __future__ import annotations

import importlib.util
import io
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO, cast

import can

from edge_agent.can.blf import BlfDamaged, BlfLimits, bounded_blf
from edge_agent.can.gzipped import GZIP_WBITS, GzipDamaged, GzipLimits, bounded_gzip
from edge_agent.can.log_kinds import (
    KIND_BY_SUFFIX,
    SNIFF_COMPRESSED_BYTES,
    SQLITE_SIGNATURE,
    SUFFIX_BY_KIND,
    SUPPORTED,
    UNCOMPRESSIBLE,
    sniff,
)
from edge_agent.can.reader_warnings import reading

CAN_ERR_FLAG = 0x20000000
CAN_ERR_MASK = 0x1FFFFFFF
FD_LENGTHS = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64})
MAX_EXAMPLES = 5
TEXT_READERS: dict[str, type[can.io.generic.TextIOMessageReader]] = {
    ".asc": can.ASCReader,
    ".csv": can.CSVReader,
    ".trc": can.TRCReader,
}
# A candump line is under 200 characters and an ASC line not much longer.
MAX_LINE_CHARS = 4096

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
        """Count one malformed record; keep its reason if it is among the first few.

        The example reads ``where: reason``, or just ``reason`` when it says where itself.
        """
        self.malformed += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {reason}" if where else reason)


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


class LineTooLong(ValueError):
    """A text log line longer than :data:`MAX_LINE_CHARS`: not a log this reader knows."""


class BoundedLines:
    """The lines of a text file, each at most ``limit`` characters (longer: LineTooLong).

    Iterating a file object reads a whole line, however long; this reads at most ``limit``
    characters of one. Iteration and ``close`` are all python-can's text readers use.
    """

    def __init__(self, handle: TextIO, limit: int = MAX_LINE_CHARS) -> None:
        self.handle = handle
        self.limit = limit
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.handle.readline(self.limit + 1)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) > self.limit and not line.endswith("\n"):
            raise LineTooLong(f"line {self.number} is longer than {self.limit} characters")
        return line

    def close(self) -> None:
        """Close the file."""
        self.handle.close()


def bounded_lines(path: Path, limit: int = MAX_LINE_CHARS) -> BoundedLines:
    """``path`` opened as text (undecodable bytes replaced) with lines of at most ``limit``."""
    return BoundedLines(path.open(encoding="utf-8", errors="replace", newline=None), limit)


def _read_python_can(
    reader: can.io.generic.MessageReader, stats: LogStats
) -> Iterator[can.Message]:
    try:
        iterator = iter(reader)
        while True:
            previous = getattr(reading, "stats", None)
            reading.stats = stats  # python-can's warnings meanwhile count here, not logged
            try:
                frame = next(iterator)
            except StopIteration:
                return
            except (BlfDamaged, GzipDamaged, LineTooLong) as error:
                stats.bad("", str(error))  # the message says where
                return
            except Exception as error:
                stats.bad(f"record {stats.frames + 1}", f"{type(error).__name__}: {error}")
                return
            finally:
                reading.stats = previous
            stats.frames += 1
            yield frame
    finally:
        reader.stop()


def log_kind(path: str | Path) -> tuple[str, bool]:
    """The kind of log ``path`` names by its suffix, and whether it is gzip-compressed.

    Raises LogFormatError naming the supported formats when the suffix is none of them.
    """
    path = Path(path)
    suffixes = [suffix.lower() for suffix in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = (suffixes[-2] if len(suffixes) >= 2 else "") if compressed else path.suffix.lower()
    named = "".join(path.suffixes[-2:]) if compressed else path.suffix
    if suffix not in KIND_BY_SUFFIX or (compressed and suffix in UNCOMPRESSIBLE):
        raise LogFormatError(
            f"{path}: unknown log kind {named or '(none)'!r}; supported: {SUPPORTED}"
        )
    return suffix, compressed


def open_log(
    path: str | Path,
    stats: LogStats,
    blf_limits: BlfLimits | None = None,
    gzip_limits: GzipLimits | None = None,
) -> Iterator[can.Message]:
    """Frames of the log at ``path`` by its suffix (:data:`SUPPORTED`); else LogFormatError.

    The file is checked before the first frame is asked for, so a missing file, an unknown
    suffix, a BLF file without a usable header or a ``.gz`` file that is not gzip fails here,
    not halfway through. Every format but candump ``.log`` (our tolerant reader) and SQLite
    ``.db`` goes through python-can's reader for it.
    """
    path = Path(path)
    suffix, compressed = log_kind(path)
    if not path.is_file():
        raise LogFormatError(
            f"{path}: file not found" if not path.exists() else f"{path}: not a file"
        )
    if suffix == ".db":
        return _read_sqlite(path, stats)
    try:
        handle: IO[bytes] = path.open("rb")
    except OSError as error:
        raise LogFormatError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        binary: BinaryIO = cast(BinaryIO, handle)
        if compressed:
            binary = cast(BinaryIO, bounded_gzip(binary, gzip_limits))
        if suffix in TEXT_READERS or suffix == ".log":
            text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline=None)
            lines = BoundedLines(text)
            if suffix == ".log":
                return _read_candump_lines(lines, stats)
            reader: can.io.generic.MessageReader = TEXT_READERS[suffix](cast(TextIO, lines))
        elif suffix == ".blf":
            reader = can.BLFReader(cast(BinaryIO, bounded_blf(binary, blf_limits)))
        else:
            reader = _mf4_reader(binary)
    except LogFormatError:
        handle.close()
        raise
    except Exception as error:  # BlfDamaged, GzipDamaged, or python-can's own complaint
        handle.close()
        raise LogFormatError(f"{path}: not a readable {suffix} file: {error}") from None
    return _read_python_can(reader, stats)


def _mf4_reader(binary: BinaryIO) -> can.io.generic.MessageReader:
    if importlib.util.find_spec("asammdf") is None:  # python-can's MF4 reader needs it
        raise LogFormatError("reading .mf4 needs asammdf: pip install asammdf (or convert the log)")
    return can.MF4Reader(binary)


def _read_sqlite(path: Path, stats: LogStats) -> Iterator[can.Message]:
    # python-can's reader connects by file name, and sqlite3 would create a missing or
    # empty file's database: only a file with SQLite's header gets that far.
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_SIGNATURE))
    except OSError as error:
        raise LogFormatError(f"{path}: cannot read: {error.strerror or error}") from None
    if head != SQLITE_SIGNATURE:
        raise LogFormatError(f"{path}: not a readable SQLite .db file (no SQLite header)")
    reader = can.SqliteReader(str(path))
    return _read_python_can(reader, stats)


def _read_candump_lines(lines: BoundedLines, stats: LogStats) -> Iterator[can.Message]:
    try:
        yield from read_candump_lines(lines, stats)
    except (LineTooLong, GzipDamaged) as error:
        stats.bad(f"line {lines.number}" if isinstance(error, LineTooLong) else "", str(error))
    finally:
        lines.close()


def _head(path: Path, compressed: bool) -> bytes:
    """The first 64 bytes of the file, inflated when ``compressed`` (even if cut off later)."""
    with path.open("rb") as handle:
        raw = handle.read(64 if not compressed else SNIFF_COMPRESSED_BYTES)
    if not compressed:
        return raw
    try:  # a decompressor object, unlike GzipFile, gives what it has before a cut
        return zlib.decompressobj(wbits=GZIP_WBITS).decompress(raw, 64)
    except zlib.error:
        return b""


def why_no_frames(path: str | Path, stats: LogStats) -> str:
    """Why the log at ``path`` gave no frame, in one line (for a replay that got none)."""
    path = Path(path)
    suffixes = [suffix.lower() for suffix in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = suffixes[-2] if compressed and len(suffixes) >= 2 else path.suffix.lower()
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            raw_head = handle.read(64)
        head = _head(path, compressed)
    except OSError as error:
        return f"cannot read it ({error.strerror or error})"
    if size == 0:
        return "the file is empty"
    expected = KIND_BY_SUFFIX.get(suffix, suffix)
    looks = sniff(head) if head or not compressed else sniff(raw_head)
    if compressed and sniff(raw_head) != "gzip":
        looks_raw = sniff(raw_head)
        return f"not gzip-compressed{f' (it is a {looks_raw} file)' if looks_raw else ''}"
    if looks and looks != expected:
        rename = SUFFIX_BY_KIND.get(looks, "")
        return f"it is a {looks} file, not {expected}" + (
            f": rename it to {path.name.split('.')[0]}{rename}{'.gz' if compressed else ''}"
            if rename
            else ""
        )
    if stats.examples:
        first = stats.examples[0]
        if "truncated at byte" in first or "gzip" in first or looks == expected:
            return first
        return f"not a {expected} file ({first})"
    if looks == expected:
        return f"a {expected} file with no CAN frames in it ({size} bytes)"
    return f"not a {expected} file ({size} bytes, no frame found); supported: {SUPPORTED}"
