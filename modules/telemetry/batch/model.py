"""What a telemetry batch is in memory: samples in, columns of typed values out.

The wire format is specified in docs/batch-format.md; ``codec.py`` turns a :class:`Batch`
into those bytes and back.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass

FORMAT_VERSION = 1  # what a batch without packed columns is written as
PACKED_VERSION = 2  # adds Rice-packed integer columns (docs/batch-format.md)
CATALOGUE_VERSION = 3  # columns name signals by id in a catalogue (docs/batch-format.md 3.2)
SUPPORTED_VERSIONS = (FORMAT_VERSION, PACKED_VERSION, CATALOGUE_VERSION)
MILLISECONDS = 1_000
MICROSECONDS = 1_000_000
RESOLUTIONS = (MILLISECONDS, MICROSECONDS)
MESSAGE_ID_BYTES = 16

SampleValue = int | float | bool | str | bytes


class ClockQuality(enum.StrEnum):
    """How far the wall-clock times of a batch can be believed.

    ``trusted``: the wall clock was synchronised when the batch was cut. ``untrusted``: it
    was not; sample times are monotonic intervals hung on an unsynchronised wall time.
    ``untrusted-restamped``: an untrusted batch whose wall base was recomputed later from the
    monotonic base and a trusted monotonic-to-wall offset (see ``restamp``).
    """

    TRUSTED = "trusted"
    UNTRUSTED_RESTAMPED = "untrusted-restamped"
    UNTRUSTED = "untrusted"


class ValueType(enum.StrEnum):
    """The logical type of every value in one signal column."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    BYTES = "bytes"


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one signal, with both clocks taken when it was read.

    ``monotonic`` is seconds on a clock that never jumps (``time.monotonic()``); ``wall`` is
    seconds since the Unix epoch as the (possibly unsynchronised) wall clock said.
    """

    signal: str
    monotonic: float
    wall: float
    value: SampleValue


@dataclass(frozen=True, slots=True)
class DecodedSample:
    """One sample read back from a batch: signal, wall-clock time (epoch seconds), value."""

    signal: str
    wall: float
    value: SampleValue


@dataclass(frozen=True, slots=True)
class SignalColumn:
    """The samples of one signal in a batch, in the order they were taken.

    ``offsets`` are absolute offsets in ticks (``Batch.resolution`` per second) from the
    batch's time base, one per value; they may decrease when a clock jumped back.
    """

    name: str
    type: ValueType
    offsets: tuple[int, ...]
    values: tuple[SampleValue, ...]

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class Batch:
    """A decoded (or about-to-be-encoded) telemetry batch.

    ``wall_base`` and ``monotonic_base`` are the time base in ticks (wall ticks since the
    epoch, monotonic ticks since boot ``boot_id``); a sample's wall time is
    ``(wall_base + offset) / resolution`` seconds. ``decimation`` counts how many times the
    spool halved the samples of every column to save space (0: full resolution).
    ``version`` is the format version the batch was read from; the encoder writes the lowest
    version that holds the encodings it chose, and ``same_as`` ignores it. ``catalogue`` is
    the content hash of the signal catalogue a version-3 batch names its signals from
    (empty for versions 1 and 2).
    """

    vehicle_id: str
    stream: str
    sequence: int
    message_id: bytes
    resolution: int
    wall_base: int
    monotonic_base: int
    clock: ClockQuality
    signals: tuple[SignalColumn, ...]
    boot_id: str = ""
    decimation: int = 0
    version: int = FORMAT_VERSION
    catalogue: bytes = b""

    @property
    def sample_count(self) -> int:
        """How many samples the batch holds over all columns."""
        return sum(len(column) for column in self.signals)

    def wall_time(self, offset: int) -> float:
        """Wall-clock time in epoch seconds of a sample at ``offset`` ticks."""
        return (self.wall_base + offset) / self.resolution

    def samples(self) -> Iterator[DecodedSample]:
        """Every sample, column by column, in the order each column holds them."""
        for column in self.signals:
            for offset, value in zip(column.offsets, column.values, strict=True):
                yield DecodedSample(column.name, self.wall_time(offset), value)

    def same_as(self, other: Batch) -> bool:
        """Equality that compares floats bit for bit (so NaN equals the same NaN)."""
        if _header(self) != _header(other) or len(self.signals) != len(other.signals):
            return False
        return all(
            mine.name == theirs.name
            and mine.type == theirs.type
            and mine.offsets == theirs.offsets
            and _comparable(mine.values) == _comparable(theirs.values)
            for mine, theirs in zip(self.signals, other.signals, strict=True)
        )


def _header(batch: Batch) -> tuple[object, ...]:
    return (
        batch.vehicle_id,
        batch.stream,
        batch.sequence,
        batch.message_id,
        batch.resolution,
        batch.wall_base,
        batch.monotonic_base,
        batch.clock,
        batch.boot_id,
        batch.decimation,
    )


def _comparable(values: tuple[SampleValue, ...]) -> tuple[object, ...]:
    return tuple(
        (float, struct.pack("<d", value)) if type(value) is float else (type(value), value)
        for value in values
    )
