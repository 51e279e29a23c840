"""Signal columns on the wire: choosing a lossless value encoding, and reading one back.

Encodings (docs/batch-format.md, "Signal columns"):

* ``int``: ``delta`` (running differences) or ``raw`` when a difference leaves msgpack's range;
* ``float``: ``scaled`` (integers ``k`` with ``value = k * scale + offset``, the way a DBC
  defines physical values) or ``decimal`` (``value = k / 10**digits``, values that were
  rounded to decimals), both stored as running differences of ``k``; else ``f32``
  (little-endian float32 bytes, when every value is exactly a float32), else ``f64``
  (little-endian float64 bytes). The encoder picks the first that reproduces every value
  bit for bit (a caller's DBC scale first, then decimals, then common DBC scales);
* ``bool``, ``str``, ``bytes``: ``raw`` msgpack arrays.

Format v2 adds *packing*: the integer series ``K`` of an ``int`` column (its values) or of
a ``scaled``/``decimal`` one (the ``k``) may travel as ``K[0]`` in ``v0`` and the residuals of
a predictor ``pred`` (``predict.py``), Rice-coded with parameter ``rk`` in a ``bin`` ``v``
(``rice.py``). The encoder packs a column when it is worth it: at least ``PACK_MIN_VALUES``
values, no predictor leaving mostly zeros (steady values and counters compress better as
arrays under zstd), and a best Rice parameter of 1 or more; then it takes the predictor
whose residuals code shortest.
"""

from __future__ import annotations

import math
import operator
import sys
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import zstandard

from edge_agent.modules.telemetry.batch import predict, rice
from edge_agent.modules.telemetry.batch.errors import MalformedBatch
from edge_agent.modules.telemetry.batch.model import SampleValue, SignalColumn, ValueType
from edge_agent.modules.telemetry.batch.packing import packb
from edge_agent.modules.telemetry.batch.shared_zstd import SharedCompressor

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
OFFSET_LIMIT = 2**62  # offsets stay in [-2**62, 2**62) so every difference fits an int64
EXACT_INT_LIMIT = 2**53  # |k| of a scaled float stays exact as a float64
MAX_NAME_CHARS = 1024

ENCODINGS: dict[ValueType, tuple[str, ...]] = {
    ValueType.INT: ("delta", "raw"),
    ValueType.FLOAT: ("decimal", "scaled", "f32", "f64"),
    ValueType.BOOL: ("raw",),
    ValueType.STR: ("raw",),
    ValueType.BYTES: ("raw",),
}
_KNOWN_KEYS = frozenset({"name", "type", "enc", "t", "v", "scale", "offset", "digits"})
_PACKED_KEYS = frozenset({"rk", "pred", "v0"})
_INTEGER_ENCODINGS = frozenset({"delta", "raw", "scaled", "decimal"})
PACK_MIN_VALUES = 16
_SCALARS = (type(None), bool, int, float, str, bytes)
_BIG_ENDIAN = sys.byteorder == "big"
# zstd level 1, no frame header or checksum: what sizes a column (shared_zstd.py: one context).
_SIZING = SharedCompressor(
    lambda: zstandard.ZstdCompressor(
        compression_params=zstandard.ZstdCompressionParameters.from_level(
            1, write_checksum=False, write_content_size=False, write_dict_id=False
        )
    )
)


@dataclass(frozen=True, slots=True)
class LinearScale:
    """A DBC-style linear conversion: ``physical = raw * scale + offset``.

    Passed to the encoder as a hint per signal, it lets float values that came out of that
    conversion travel as small integers (exactness is checked value by value).
    """

    scale: float
    offset: float = 0.0


# Tried after the caller's hint and the decimal encodings, offset 0: products with the
# decimal and binary steps common in DBC files (cantools computes ``raw * scale + offset``,
# which is not always the double nearest to the decimal).
_COMMON_SCALES = (0.1, 0.01, 0.001, 0.0001, 1e-5, 1e-6, 0.5, 0.25, 0.125, 0.0625, 0.03125)
AUTO_SCALES = tuple(LinearScale(scale) for scale in (*_COMMON_SCALES, 0.015625, 0.05, 0.2, 0.4))
DECIMAL_DIGITS = tuple(range(10))  # tried by the encoder; the format allows 0 to 15
MAX_DECIMAL_DIGITS = 15


def differences(values: Sequence[int]) -> list[int]:
    """Running differences: the first value itself, then each value minus the one before."""
    return [values[0], *map(operator.sub, values[1:], values[:-1])] if values else []


def encode_column(
    column: SignalColumn, hint: LinearScale | None = None, *, pack: bool = True
) -> dict[str, Any]:
    """The msgpack map of ``column``, with the smallest encoding that is exact.

    ``pack=False`` keeps every column in its v1 form (no Rice packing).
    """
    fields: dict[str, Any] = {"name": column.name, "type": column.type.value}
    fields["t"] = differences(column.offsets)
    values = column.values
    if column.type is ValueType.INT:
        ints: list[int] = [int(v) for v in values]
        steps = differences(ints)
        if all(INT64_MIN <= step <= INT64_MAX for step in steps):
            fields.update(enc="delta", v=steps)
            if pack and len(ints) >= PACK_MIN_VALUES:
                _pack(fields, ints, "raw")
        else:
            fields.update(enc="raw", v=ints)
    elif column.type is ValueType.FLOAT:
        fields.update(_encode_floats([float(v) for v in values], hint))
        if pack and fields["enc"] in _INTEGER_ENCODINGS and len(values) >= PACK_MIN_VALUES:
            _pack(fields, list(accumulate(fields["v"])), fields["enc"])
    else:
        fields.update(enc="raw", v=list(values))
    return fields


def is_packed(fields: Mapping[str, Any]) -> bool:
    """Whether an encoded column map is Rice-packed (needs format v2)."""
    return "rk" in fields


def _within(values: Sequence[int], limit: int) -> bool:
    return -limit <= min(values) and max(values) <= limit


def _pack(fields: dict[str, Any], series: list[int], encoding: str) -> None:
    """Rice-pack ``series`` (the column's integers) with its best predictor, if that is smaller.

    Smaller than what: the column's array as zstd alone would code it (measured, level 1,
    without frame overhead). Counters, steady values and runs, which zstd's matches code in
    almost nothing, stay arrays; noise, which zstd's shared tables code poorly, is packed.
    """
    if not _within(series, predict.SAFE_MAGNITUDE):
        return
    # A Rice code's length grows with the residuals' magnitudes: rank the predictors by
    # their sum over the column's first values, then size the codes of the two best exactly.
    ranked = sorted(
        (
            sum(sum(map(abs, predict.residuals(part, predictor))) for part in _samples(series)),
            index,
            predictor,
        )
        for index, predictor in enumerate(predict.PREDICTORS)
    )
    best: tuple[int, int, str, list[int]] | None = None
    for _, _, predictor in ranked[:_EXACTLY_SIZED]:
        rest = predict.residuals(series, predictor)
        parameter, bits = rice.best_parameter(rice.zigzag_all(rest))
        if best is None or bits < best[0]:
            best = (bits, parameter, predictor, rest)
    if best is None:
        return
    bits, parameter, predictor, rest = best
    if (bits + 7) // 8 + _PACKED_HEADER_BYTES >= _zstd_size(fields["v"]):
        return
    fields.update(
        enc=encoding, v=rice.encode(rest, parameter), rk=parameter, pred=predictor, v0=series[0]
    )


_EXACTLY_SIZED = 3  # predictors whose Rice codes are sized exactly
_RANKED_ON = 100  # values per stretch the predictors are ranked on


def _samples(series: list[int]) -> list[list[int]]:
    """Stretches of ``series`` to rank the predictors on.

    All of a short column, else its start, middle and end (a car that stood, then drove).
    """
    if len(series) <= 3 * _RANKED_ON:
        return [series]
    middle = (len(series) - _RANKED_ON) // 2
    return [series[:_RANKED_ON], series[middle : middle + _RANKED_ON], series[-_RANKED_ON:]]


_PACKED_HEADER_BYTES = 12  # rk, pred and v0 keys of a packed column, about


def _zstd_size(array: list[Any]) -> int:
    """Bytes zstd (level 1, no frame header or checksum) codes a msgpack array into."""
    return len(_SIZING.compress(packb(array))) - _ZSTD_FRAME_HEADER


_ZSTD_FRAME_HEADER = 6  # magic and the smallest frame header, not paid per column in a batch


def _encode_floats(values: list[float], hint: LinearScale | None) -> dict[str, Any]:
    original = array("d", values)
    if values and all(map(math.isfinite, values)):
        if hint is not None:
            found = _encode_linear(values, hint, original)
            if found is not None:
                return found
        for digits in DECIMAL_DIGITS:
            found = _encode_decimal(values, digits, original)
            if found is not None:
                return found
        for candidate in AUTO_SCALES:
            found = _encode_linear(values, candidate, original)
            if found is not None:
                return found
    single = array("f", values)
    if _bits(array("d", single)) == _bits(original):
        return {"enc": "f32", "v": _little_endian(single)}
    return {"enc": "f64", "v": _little_endian(original)}


def _encode_decimal(
    values: list[float], digits: int, original: array[float]
) -> dict[str, Any] | None:
    divisor = float(10**digits)  # exact for every allowed digits value
    try:
        # Most candidates fail on the first value: try it alone before the whole column.
        if round(values[0] * divisor) / divisor != values[0]:
            return None
        raw = [round(v * divisor) for v in values]
    except (OverflowError, ValueError):
        return None
    if not _exact(raw, [k / divisor for k in raw], original):
        return None
    return {"enc": "decimal", "digits": digits, "v": differences(raw)}


def _encode_linear(
    values: list[float], linear: LinearScale, original: array[float]
) -> dict[str, Any] | None:
    scale, offset = linear.scale, linear.offset
    if scale == 0.0 or not (math.isfinite(scale) and math.isfinite(offset)):
        return None
    try:
        if round((values[0] - offset) / scale) * scale + offset != values[0]:
            return None
        raw = [round((v - offset) / scale) for v in values]
    except (OverflowError, ValueError, ZeroDivisionError):
        return None
    if not _exact(raw, [k * scale + offset for k in raw], original):
        return None
    return {"enc": "scaled", "scale": scale, "offset": offset, "v": differences(raw)}


def _exact(raw: list[int], rebuilt: list[float], original: array[float]) -> bool:
    """Whether ``raw`` are exact (|k| <= 2**53) and give back ``original`` bit for bit."""
    if max(abs(min(raw)), abs(max(raw))) > EXACT_INT_LIMIT:
        return False
    return _bits(array("d", rebuilt)) == _bits(original)


def _bits(values: array[float]) -> bytes:
    return values.tobytes()


def _little_endian(values: array[float]) -> bytes:
    if _BIG_ENDIAN:
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def decode_column(fields: object, where: str, *, packed_allowed: bool = False) -> SignalColumn:
    """Validate one column map read from the wire and return the column it describes.

    ``packed_allowed`` (format v2) accepts Rice-packed integer arrays.
    """
    if not isinstance(fields, dict):
        raise MalformedBatch(f"{where}: expected a map, got {type(fields).__name__}")
    packed = packed_allowed and type(fields.get("v")) is bytes and "rk" in fields
    check_extra_keys(fields, _KNOWN_KEYS | _PACKED_KEYS if packed else _KNOWN_KEYS, where)
    name = typed_field(fields, "name", str, where)
    if not name or len(name) > MAX_NAME_CHARS:
        raise MalformedBatch(f"{where}.name: must be 1 to {MAX_NAME_CHARS} characters")
    type_name = typed_field(fields, "type", str, where)
    try:
        value_type = ValueType(type_name)
    except ValueError:
        raise MalformedBatch(f"{where}.type: unknown value type {type_name!r}") from None
    encoding = typed_field(fields, "enc", str, where)
    if encoding not in ENCODINGS[value_type]:
        raise MalformedBatch(f"{where}.enc: {encoding!r} is not an encoding of {type_name}")
    offsets = _offsets(fields.get("t"), f"{where}.t")
    if packed:
        if encoding not in _INTEGER_ENCODINGS:
            raise MalformedBatch(f"{where}: a {encoding!r} column cannot be packed")
        fields = {**fields, "v": _unpack(fields, encoding, len(offsets), where)}
    values = _values(fields, value_type, encoding, where)
    if len(values) != len(offsets):
        raise MalformedBatch(
            f"{where}: {len(offsets)} timestamps but {len(values)} values (must be equal)"
        )
    return SignalColumn(name, value_type, offsets, values)


def _unpack(fields: Mapping[str, Any], encoding: str, count: int, where: str) -> list[int]:
    """The integer array a v1 column would hold, from a packed column's fields."""
    if count == 0:
        raise MalformedBatch(f"{where}: an empty column cannot be packed")
    parameter = typed_field(fields, "rk", int, where)
    first = typed_field(fields, "v0", int, where)
    predictor = typed_field(fields, "pred", str, where)
    if predictor not in predict.PREDICTORS:
        raise MalformedBatch(f"{where}.pred: unknown predictor {predictor[:40]!r}")
    limit = predict.SAFE_MAGNITUDE
    if not -limit <= first <= limit:
        raise MalformedBatch(f"{where}.v0: outside +-2**58")
    try:
        rest = rice.decode(fields["v"], count - 1, parameter)
    except rice.RiceError as error:
        raise MalformedBatch(f"{where}.v: {error}") from None
    series = predict.reconstruct(first, rest, predictor)
    if not _within(series, limit):
        raise MalformedBatch(f"{where}.v: a value is outside +-2**58")
    return series if encoding == "raw" else differences(series)


def check_extra_keys(fields: Mapping[Any, Any], known: frozenset[str], where: str) -> None:
    """Unknown keys are allowed (newer minor revisions) if they hold a scalar or flat array."""
    for key, value in fields.items():
        if key in known:
            continue
        if not isinstance(key, str):
            raise MalformedBatch(f"{where}: map key {key!r} is not a string")
        if isinstance(value, list):
            if not all(isinstance(item, _SCALARS) for item in value):
                raise MalformedBatch(f"{where}[{key!r}]: unknown key holds a nested structure")
        elif not isinstance(value, _SCALARS):
            raise MalformedBatch(f"{where}[{key!r}]: unknown key holds a nested structure")


def typed_field(fields: Mapping[str, Any], key: str, kind: type[Any], where: str) -> Any:
    """``fields[key]``, which must be exactly of type ``kind``; else :class:`MalformedBatch`.

    The one schema check of every decoder part (envelope, v1/v2 columns, v3 compact columns);
    ``where`` names the place in the message (``"envelope"``, ``"signals[3]"``).
    """
    if key not in fields:
        raise MalformedBatch(f"{where}: missing key {key!r}")
    value = fields[key]
    if type(value) is not kind:
        raise MalformedBatch(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _int_list(value: object, where: str) -> list[int]:
    if not isinstance(value, list):
        raise MalformedBatch(f"{where}: expected an array, got {type(value).__name__}")
    if not all(type(item) is int for item in value):
        raise MalformedBatch(f"{where}: every element must be an integer")
    return value


def _offsets(value: object, where: str) -> tuple[int, ...]:
    steps = _int_list(value, where)
    if steps and (min(steps) < INT64_MIN or max(steps) > INT64_MAX):
        raise MalformedBatch(f"{where}: a timestamp difference is outside int64")
    offsets = tuple(accumulate(steps))
    if offsets and (min(offsets) < INT64_MIN or max(offsets) > INT64_MAX):
        raise MalformedBatch(f"{where}: a timestamp offset is outside int64")
    return offsets


def _values(
    fields: Mapping[str, Any], value_type: ValueType, encoding: str, where: str
) -> tuple[SampleValue, ...]:
    raw = fields.get("v")
    here = f"{where}.v"
    if value_type is ValueType.INT:
        ints = _int_list(raw, here)
        if encoding == "delta":
            if ints and (min(ints) < INT64_MIN or max(ints) > INT64_MAX):
                raise MalformedBatch(f"{here}: a difference is outside int64")
            ints = list(accumulate(ints))
        if ints and (min(ints) < INT64_MIN or max(ints) > UINT64_MAX):
            raise MalformedBatch(f"{here}: a value is outside int64/uint64")
        return tuple(ints)
    if value_type is ValueType.FLOAT:
        return _float_values(fields, raw, encoding, where)
    kind = {ValueType.BOOL: bool, ValueType.STR: str, ValueType.BYTES: bytes}[value_type]
    if not isinstance(raw, list) or not all(type(item) is kind for item in raw):
        raise MalformedBatch(f"{here}: expected an array of {value_type.value} values")
    return tuple(raw)


def _float_values(
    fields: Mapping[str, Any], raw: object, encoding: str, where: str
) -> tuple[float, ...]:
    here = f"{where}.v"
    if encoding in ("scaled", "decimal"):
        steps = _int_list(raw, here)
        if steps and (min(steps) < INT64_MIN or max(steps) > INT64_MAX):
            raise MalformedBatch(f"{here}: a difference is outside int64")
        ints = list(accumulate(steps))
        if ints and max(abs(min(ints)), abs(max(ints))) > EXACT_INT_LIMIT:
            raise MalformedBatch(f"{here}: a scaled integer exceeds 2**53")
        if encoding == "decimal":
            digits = typed_field(fields, "digits", int, where)
            if not 0 <= digits <= MAX_DECIMAL_DIGITS:
                raise MalformedBatch(f"{where}.digits: {digits} is outside [0, 15]")
            divisor = float(10**digits)
            return tuple(k / divisor for k in ints)
        scale = typed_field(fields, "scale", float, where)
        offset = typed_field(fields, "offset", float, where)
        return tuple(k * scale + offset for k in ints)
    if type(raw) is not bytes:
        raise MalformedBatch(f"{here}: expected bin, got {type(raw).__name__}")
    typecode, width = ("f", 4) if encoding == "f32" else ("d", 8)
    if len(raw) % width:
        raise MalformedBatch(f"{here}: {len(raw)} bytes is not a whole number of {encoding}")
    values = array(typecode)
    values.frombytes(raw)
    if _BIG_ENDIAN:
        values.byteswap()
    return tuple(values)
