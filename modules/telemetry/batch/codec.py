"""The batch format (v1, v2): samples to a :class:`Batch`, a batch to bytes, and back (strictly).

``decode_batch`` is the reference decoder of docs/batch-format.md: whatever bytes it is
given, it returns a valid :class:`Batch` or raises a ``BatchFormatError`` subclass with a
one-line reason, in time proportional to the input and memory bounded by its limits.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import msgpack

from edge_agent.modules.telemetry.batch.catalogue import Catalogue
from edge_agent.modules.telemetry.batch.columns import (
    INT64_MAX,
    INT64_MIN,
    OFFSET_LIMIT,
    UINT64_MAX,
    LinearScale,
    check_extra_keys,
    decode_column,
    encode_column,
    is_packed,
    typed_field,
)
from edge_agent.modules.telemetry.batch.compact import (
    CatalogueLookup,
    batch_from_v3,
    compact_columns,
    envelope_v3,
    v2_view,
)
from edge_agent.modules.telemetry.batch.errors import BatchFormatError, CorruptBatch, MalformedBatch
from edge_agent.modules.telemetry.batch.frame import MAX_DECOMPRESSED, seal, unseal
from edge_agent.modules.telemetry.batch.model import (
    CATALOGUE_VERSION,
    FORMAT_VERSION,
    MESSAGE_ID_BYTES,
    MILLISECONDS,
    PACKED_VERSION,
    RESOLUTIONS,
    Batch,
    ClockQuality,
    Sample,
    SampleValue,
    SignalColumn,
    ValueType,
)
from edge_agent.modules.telemetry.batch.packing import packb

# Decoding costs time and memory per sample and per column, not per byte (a few hundred
# bytes of zstd can expand to megabytes of small integers): these bound both.
MAX_ARRAY_LEN = 1 << 20  # elements of any array
MAX_SAMPLES = 1 << 20  # samples per batch, all columns together
MAX_COLUMNS = 1 << 14  # columns per batch
MAX_MAP_LEN = 64
MAX_STR_BYTES = 1 << 16
MAX_ID_CHARS = 256
MAX_DECIMATION = 62
_ENVELOPE_KEYS = frozenset(
    {"v", "vehicle", "stream", "seq", "id", "res", "wall", "mono", "clock", "boot", "decim"}
    | {"signals"}
)


def new_message_id() -> bytes:
    """A fresh 16-byte message id (a random UUID), to keep across every retry of a batch."""
    return uuid.uuid4().bytes


def build_batch(
    samples: Iterable[Sample],
    *,
    vehicle_id: str,
    stream: str,
    sequence: int,
    clock: ClockQuality,
    resolution: int = MILLISECONDS,
    message_id: bytes | None = None,
    boot_id: str = "",
) -> Batch:
    """Group ``samples`` into one column per signal and value type, in arrival order.

    The time base is the first sample's. Offsets come from the wall clock when ``clock`` is
    trusted (keeping e.g. kernel receive timestamps exact) and from the monotonic clock
    otherwise (an unsynchronised wall clock may jump; monotonic intervals are what
    ``restamp`` needs). A signal whose values change type gets one column per type.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS} ticks per second")
    # Group first (one pass, no arithmetic), then read each column's times and values in
    # bulk: per-sample statements cost more than the comprehensions below. Floats (DBC-scaled
    # values, the common case) are grouped by name alone and stored as they are.
    order: list[tuple[str, ValueType]] = []
    floats: dict[str, list[Sample]] = {}
    others: dict[tuple[str, ValueType], tuple[list[Sample], list[SampleValue]]] = {}
    for sample in samples:
        value = sample.value
        if type(value) is float:
            members = floats.get(sample.signal)
            if members is None:
                members = floats[sample.signal] = []
                order.append((sample.signal, ValueType.FLOAT))
            members.append(sample)
        else:
            value_type, value = _classify(value, sample.signal)
            key = (sample.signal, value_type)
            other = others.get(key)
            if other is None:
                other = others[key] = ([], [])
                order.append(key)
            other[0].append(sample)
            other[1].append(value)
    wall_base = monotonic_base = 0
    if order:  # the first group's first member is the batch's first sample
        name, value_type = order[0]
        first = floats[name][0] if value_type is ValueType.FLOAT else others[order[0]][0][0]
        wall_base = _tick(first.wall, resolution, first.signal)
        monotonic_base = _tick(first.monotonic, resolution, first.signal)
    on_wall = clock is ClockQuality.TRUSTED
    columns: list[SignalColumn] = []
    for key in order:
        name, value_type = key
        if value_type is ValueType.FLOAT:
            group = floats[name]
            values: tuple[SampleValue, ...] = tuple([member.value for member in group])
        else:
            group, other_values = others[key]
            values = tuple(other_values)
        wall_ticks = _ticks([member.wall for member in group], resolution, name)
        # Checked even when unused: a batch never holds a sample with an impossible time.
        monotonic_ticks = _ticks([member.monotonic for member in group], resolution, name)
        ticks, base = (wall_ticks, wall_base) if on_wall else (monotonic_ticks, monotonic_base)
        offsets = tuple([tick - base for tick in ticks])
        if min(offsets) < -OFFSET_LIMIT or max(offsets) >= OFFSET_LIMIT:
            raise ValueError(f"signal {name!r}: sample time too far from the batch's")
        columns.append(SignalColumn(name, value_type, offsets, values))
    batch = Batch(
        vehicle_id=vehicle_id,
        stream=stream,
        sequence=sequence,
        message_id=new_message_id() if message_id is None else message_id,
        resolution=resolution,
        wall_base=wall_base,
        monotonic_base=monotonic_base,
        clock=clock,
        boot_id=boot_id,
        signals=tuple(columns),
    )
    _check_envelope(batch)
    return batch


def _ticks(seconds: list[float], resolution: int, signal: str) -> list[int]:
    """Every time of one column in ticks; ValueError naming the first that cannot be one."""
    try:
        ticks = [round(value * resolution) for value in seconds]
    except (OverflowError, ValueError, TypeError):  # inf, nan: say which
        ticks = [_tick(value, resolution, signal) for value in seconds]
    if min(ticks) < INT64_MIN or max(ticks) > INT64_MAX:
        ticks = [_tick(value, resolution, signal) for value in seconds]
    return ticks


def _tick(seconds: float, resolution: int, signal: str) -> int:
    try:
        tick = round(seconds * resolution)
    except (OverflowError, ValueError):  # inf, nan
        raise ValueError(
            f"signal {signal!r}: sample time {seconds} is not a finite number"
        ) from None
    if not INT64_MIN <= tick <= INT64_MAX:
        raise ValueError(f"signal {signal!r}: sample time {seconds} is out of range")
    return tick


def _classify(value: object, signal: str) -> tuple[ValueType, SampleValue]:
    # bool before int: bool is an int subclass, but a different type on the wire.
    if isinstance(value, bool):
        return ValueType.BOOL, bool(value)
    if isinstance(value, int):
        if not INT64_MIN <= value <= UINT64_MAX:
            raise ValueError(f"signal {signal!r}: integer {value} is outside int64/uint64")
        return ValueType.INT, int(value)
    if isinstance(value, float):
        return ValueType.FLOAT, float(value)
    if isinstance(value, str):
        return ValueType.STR, str.__str__(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return ValueType.BYTES, bytes(value)
    raise TypeError(f"signal {signal!r}: cannot encode a {type(value).__name__} value")


def _check_envelope(batch: Batch) -> None:
    if len(batch.message_id) != MESSAGE_ID_BYTES:
        raise ValueError(f"message_id must be {MESSAGE_ID_BYTES} bytes")
    if not 0 <= batch.sequence <= UINT64_MAX:
        raise ValueError("sequence must be a non-negative 64-bit integer")
    for label, text in (("vehicle_id", batch.vehicle_id), ("stream", batch.stream)):
        if not 0 < len(text) <= MAX_ID_CHARS:
            raise ValueError(f"{label} must be 1 to {MAX_ID_CHARS} characters")
    if len(batch.boot_id) > MAX_ID_CHARS:
        raise ValueError(f"boot_id must be at most {MAX_ID_CHARS} characters")


def encode_batch(
    batch: Batch,
    *,
    scales: Mapping[str, LinearScale] | None = None,
    level: int = 3,
    pack: bool = True,
    catalogue: Catalogue | None = None,
) -> bytes:
    """Serialise ``batch`` to bytes, choosing the smallest exact value encodings.

    ``scales`` maps signal names to their DBC conversion so float values travel as the
    integers they came from. Columns of noisy integers are Rice-packed (format v2) unless
    ``pack`` is False (for a cloud that reads only v1); a batch without packed columns is
    written as v1. With a ``catalogue`` (one the cloud acknowledged) the batch is written as
    v3: signals by id in it, packed where it pays. Raises ValueError if the batch is too
    large for one batch.
    """
    _check_envelope(batch)
    if len(batch.signals) > MAX_COLUMNS or batch.sample_count > MAX_SAMPLES:
        raise ValueError(
            f"a batch holds at most {MAX_COLUMNS} columns and {MAX_SAMPLES} samples: cut it"
        )
    hints = scales or {}
    if catalogue is not None:
        compact = compact_columns(batch, catalogue, hints, pack=True)
        payload = packb(envelope_v3(batch, compact, catalogue))
        return seal(payload, level, CATALOGUE_VERSION)
    columns = [encode_column(column, hints.get(column.name), pack=pack) for column in batch.signals]
    version = PACKED_VERSION if any(is_packed(column) for column in columns) else FORMAT_VERSION
    envelope: dict[str, Any] = {
        "v": version,
        "vehicle": batch.vehicle_id,
        "stream": batch.stream,
        "seq": batch.sequence,
        "id": batch.message_id,
        "res": batch.resolution,
        "wall": batch.wall_base,
        "mono": batch.monotonic_base,
        "clock": batch.clock.value,
        "boot": batch.boot_id,
        "decim": batch.decimation,
        "signals": columns,
    }
    return seal(packb(envelope), level, version)


def reencode_batch(batch: Batch, catalogue: Catalogue | None = None) -> bytes:
    """Bytes of a changed copy of a decoded batch (re-stamped, downsampled).

    Never in a newer format than it was read in: a vehicle told ``batch_format = 1`` keeps
    sending v1 when the spool downsamples or the uplink re-stamps its batches. A v3 batch
    needs its ``catalogue`` (the one its hash names) and stays v3 with it.
    """
    if batch.version == CATALOGUE_VERSION:
        if catalogue is None or catalogue.hash != batch.catalogue:
            raise ValueError("a version-3 batch re-encodes only with the catalogue it names")
        return encode_batch(batch, catalogue=catalogue)
    return encode_batch(batch, pack=batch.version >= PACKED_VERSION)


def encode_samples(
    samples: Iterable[Sample],
    *,
    vehicle_id: str,
    stream: str,
    sequence: int,
    clock: ClockQuality,
    resolution: int = MILLISECONDS,
    message_id: bytes | None = None,
    boot_id: str = "",
    scales: Mapping[str, LinearScale] | None = None,
    pack: bool = True,
    catalogue: Catalogue | None = None,
) -> bytes:
    """``build_batch`` then ``encode_batch``: samples in, batch bytes out."""
    batch = build_batch(
        samples,
        vehicle_id=vehicle_id,
        stream=stream,
        sequence=sequence,
        clock=clock,
        resolution=resolution,
        message_id=message_id,
        boot_id=boot_id,
    )
    return encode_batch(batch, scales=scales, pack=pack, catalogue=catalogue)


def decode_batch(
    data: bytes | bytearray | memoryview,
    *,
    max_decompressed: int = MAX_DECOMPRESSED,
    catalogues: CatalogueLookup | None = None,
) -> Batch:
    """Decode batch bytes (format v1, v2 or v3) into a :class:`Batch` (the reference decoder).

    A v3 batch needs the catalogue its hash names in ``catalogues`` (hash -> catalogue);
    without it ``UnknownCatalogue`` says which one (keep the batch and decode it once the
    catalogue is there). Raises a ``BatchFormatError`` subclass, and nothing else, for any
    other input.
    """
    payload = unseal(data, max_decompressed)
    header_version = memoryview(data).cast("B")[4]  # unseal checked the header
    try:
        envelope = msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_str_len=MAX_STR_BYTES,
            max_bin_len=max_decompressed,
            max_array_len=MAX_ARRAY_LEN,
            max_map_len=MAX_MAP_LEN,
            max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise CorruptBatch("batch: stray bytes after the msgpack envelope") from None
    except Exception as error:  # msgpack raises several unrelated types on hostile input
        raise CorruptBatch(f"batch: unreadable msgpack ({type(error).__name__}: {error})") from None
    try:
        return _to_batch(envelope, header_version, catalogues)
    except BatchFormatError:
        raise
    except (TypeError, ValueError, OverflowError) as error:
        raise MalformedBatch(f"batch: {type(error).__name__}: {error}") from None


def _to_batch(envelope: object, header_version: int, catalogues: CatalogueLookup | None) -> Batch:
    if not isinstance(envelope, dict):
        raise MalformedBatch(f"envelope: expected a map, got {type(envelope).__name__}")
    version = typed_field(envelope, "v", int, "envelope")
    if version != header_version:
        raise MalformedBatch(
            f"envelope.v: {version} disagrees with the header's version {header_version}"
        )
    if version == CATALOGUE_VERSION:
        batch = batch_from_v3(
            envelope, catalogues, max_columns=MAX_COLUMNS, max_samples=MAX_SAMPLES
        )
        # The header fields, checked by the same rules as v2's under their v2 names.
        named = (catalogues or {}).get(batch.catalogue)
        checked = _header(v2_view(envelope, named) | {"v": version, "clock": batch.clock.value})
        return dataclasses.replace(batch, **checked)
    check_extra_keys(envelope, _ENVELOPE_KEYS, "envelope")
    clock_name = typed_field(envelope, "clock", str, "envelope")
    try:
        clock = ClockQuality(clock_name)
    except ValueError:
        raise MalformedBatch(f"envelope.clock: unknown clock quality {clock_name!r}") from None
    raw_signals = typed_field(envelope, "signals", list, "envelope")
    if len(raw_signals) > MAX_COLUMNS:
        raise MalformedBatch(f"envelope.signals: {len(raw_signals)} columns, limit {MAX_COLUMNS}")
    declared = sum(len(c["t"]) for c in raw_signals if type(c) is dict and type(c.get("t")) is list)
    if declared > MAX_SAMPLES:
        raise MalformedBatch(f"envelope.signals: {declared} samples, limit {MAX_SAMPLES}")
    return Batch(
        **_header(envelope),
        clock=clock,
        version=version,
        signals=tuple(
            decode_column(
                column, f"envelope.signals[{index}]", packed_allowed=version >= PACKED_VERSION
            )
            for index, column in enumerate(raw_signals)
        ),
    )


def _header(envelope: dict[str, Any]) -> dict[str, Any]:
    """The checked header fields every version shares, as ``Batch`` arguments."""
    resolution = typed_field(envelope, "res", int, "envelope")
    if resolution not in RESOLUTIONS:
        raise MalformedBatch(f"envelope.res: {resolution} is not one of {RESOLUTIONS}")
    message_id = typed_field(envelope, "id", bytes, "envelope")
    if len(message_id) != MESSAGE_ID_BYTES:
        raise MalformedBatch(f"envelope.id: {len(message_id)} bytes, must be 16")
    return {
        "vehicle_id": _text(envelope, "vehicle", required=True),
        "stream": _text(envelope, "stream", required=True),
        "sequence": _bounded(envelope, "seq", 0, UINT64_MAX),
        "message_id": message_id,
        "resolution": resolution,
        "wall_base": _bounded(envelope, "wall", INT64_MIN, INT64_MAX),
        "monotonic_base": _bounded(envelope, "mono", INT64_MIN, INT64_MAX),
        "boot_id": _text(envelope, "boot", required=False),
        "decimation": _bounded(envelope, "decim", 0, MAX_DECIMATION, default=0),
    }


def _text(envelope: dict[str, Any], key: str, *, required: bool) -> str:
    if not required and key not in envelope:
        return ""
    text: str = typed_field(envelope, key, str, "envelope")
    if len(text) > MAX_ID_CHARS or (required and not text):
        raise MalformedBatch(f"envelope.{key}: must be 1 to {MAX_ID_CHARS} characters")
    return text


def _bounded(
    envelope: dict[str, Any], key: str, low: int, high: int, default: int | None = None
) -> int:
    if default is not None and key not in envelope:
        return default
    value: int = typed_field(envelope, key, int, "envelope")
    if not low <= value <= high:
        raise MalformedBatch(f"envelope.{key}: {value} is outside [{low}, {high}]")
    return value
