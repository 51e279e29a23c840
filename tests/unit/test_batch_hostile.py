"""The reference decoder against garbage, damage and forgery: only BatchFormatError escapes.

Work on hostile input is shown bounded by the memory the decoder takes (tracemalloc), not by
seconds: how fast it refuses is a figure of the machine, measured by ``edge-agent bench
batch`` (``hostile``).
"""

from __future__ import annotations

import contextlib
import struct
import tracemalloc
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.modules.telemetry.batch import (
    MAX_DECOMPRESSED,
    Batch,
    BatchFormatError,
    ClockQuality,
    CorruptBatch,
    MalformedBatch,
    NotABatch,
    OversizedBatch,
    Sample,
    TruncatedBatch,
    UnsupportedBatchVersion,
    decode_batch,
    encode_samples,
)
from edge_agent.modules.telemetry.batch.frame import HEADER, MAGIC, seal, unseal

MIB = 1024 * 1024


def valid_batch() -> bytes:
    samples = [Sample("speed", i * 0.01, 1.7e9 + i * 0.01, i * 37 * 0.01) for i in range(50)]
    samples += [Sample("gear", 0.5, 1.7e9 + 0.5, "D"), Sample("raw", 0.6, 1.7e9 + 0.6, b"\x01")]
    samples += [Sample("imu", i * 0.1, 1.7e9 + i * 0.1, 0.1234567 * i) for i in range(10)]
    return encode_samples(
        samples, vehicle_id="VIN1", stream="chassis", sequence=1, clock=ClockQuality.TRUSTED
    )


VALID = valid_batch()
ENVELOPE: dict[str, Any] = msgpack.unpackb(unseal(VALID))


def decode_within_limits(data: bytes) -> Batch | None:
    """Decode; only a Batch or a one-line BatchFormatError may come out."""
    try:
        return decode_batch(data)
    except BatchFormatError as error:
        message = str(error)
        assert message
        assert "\n" not in message
        return None


def peak_memory(action: Callable[[], object]) -> int:
    """Bytes the Python heap grew by at most while ``action`` ran (it may raise)."""
    already_tracing = tracemalloc.is_tracing()
    if not already_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        with contextlib.suppress(BatchFormatError):
            action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not already_tracing:
            tracemalloc.stop()
    return peak - before


def sealed(envelope: object) -> bytes:
    return seal(msgpack.packb(envelope, use_bin_type=True))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_rejected(data: bytes) -> None:
    assert decode_within_limits(data) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_behind_a_valid_header_are_rejected(data: bytes) -> None:
    header = HEADER.pack(MAGIC, 1, 1, len(data))
    assert decode_within_limits(header + data) is None


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255), st.sampled_from("rdi")),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_valid_batches_decode_or_fail_cleanly(
    mutations: list[tuple[int, int, str]],
) -> None:
    data = bytearray(VALID)
    for offset, byte, kind in mutations:
        position = offset % max(len(data), 1)
        if kind == "r":
            data[position] = byte
        elif kind == "d":
            del data[position]
        else:
            data.insert(position, byte)
    decode_within_limits(bytes(data))


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(ENVELOPE)), msgpack_values)
def test_forged_envelope_fields_decode_or_fail_cleanly(key: str, value: object) -> None:
    envelope = dict(ENVELOPE)
    envelope[key] = value
    decode_within_limits(sealed(envelope))


@settings(max_examples=400, deadline=None)
@given(
    st.integers(0, len(ENVELOPE["signals"]) - 1),
    st.sampled_from(["name", "type", "enc", "t", "v", "scale", "offset", "extra"]),
    msgpack_values,
)
def test_forged_column_fields_decode_or_fail_cleanly(index: int, key: str, value: object) -> None:
    envelope = dict(ENVELOPE)
    envelope["signals"] = [dict(column) for column in ENVELOPE["signals"]]
    envelope["signals"][index][key] = value
    decode_within_limits(sealed(envelope))


@settings(max_examples=200, deadline=None)
@given(msgpack_values)
def test_arbitrary_msgpack_inside_a_valid_frame_is_rejected(value: object) -> None:
    assert decode_within_limits(sealed(value)) is None


def test_every_truncation_of_a_valid_batch_is_rejected() -> None:
    for length in range(len(VALID)):
        with pytest.raises(BatchFormatError):
            decode_batch(VALID[:length])
    with pytest.raises(TruncatedBatch):
        decode_batch(VALID[: len(VALID) - 1])
    with pytest.raises(TruncatedBatch):
        decode_batch(VALID[:5])


def test_header_problems_have_their_own_errors() -> None:
    with pytest.raises(NotABatch, match="magic"):
        decode_batch(b"PK\x03\x04 not a batch at all")
    with pytest.raises(UnsupportedBatchVersion, match="version 4"):
        decode_batch(MAGIC + b"\x04" + VALID[5:])
    with pytest.raises(MalformedBatch, match=r"envelope\.v: 1 disagrees with the header's"):
        decode_batch(MAGIC + b"\x02" + VALID[5:])
    with pytest.raises(UnsupportedBatchVersion, match="codec"):
        decode_batch(MAGIC + b"\x01\x07" + VALID[6:])
    with pytest.raises(OversizedBatch, match="declares"):
        decode_batch(HEADER.pack(MAGIC, 1, 1, MAX_DECOMPRESSED + 1) + VALID[HEADER.size :])
    with pytest.raises(CorruptBatch, match="declares"):
        decode_batch(HEADER.pack(MAGIC, 1, 1, 10) + VALID[HEADER.size :])
    with pytest.raises(CorruptBatch, match="stray bytes"):
        decode_batch(VALID + b"\x00")


def test_a_bomb_is_refused_before_decompression() -> None:
    bomb = zstandard.ZstdCompressor(write_checksum=True).compress(bytes(64 * MIB))
    honest = HEADER.pack(MAGIC, 1, 1, 64 * MIB) + bomb
    liar = HEADER.pack(MAGIC, 1, 1, 1000) + bomb  # header lies small, frame says big
    with pytest.raises(OversizedBatch):
        decode_batch(honest)
    with pytest.raises(CorruptBatch):
        decode_batch(liar)
    # 64 MiB would come out; neither refusal decompresses even one.
    assert peak_memory(lambda: decode_batch(honest)) < MIB
    assert peak_memory(lambda: decode_batch(liar)) < MIB


def test_a_frame_that_lies_about_its_size_is_stopped_at_the_declared_size() -> None:
    # Frame header: single segment, 4-byte content size 1000; then 800 RLE blocks of 128 KiB.
    header = bytes.fromhex("28b52ffd") + bytes([0xA4]) + (1000).to_bytes(4, "little")

    def block(last: int, size: int) -> bytes:
        return ((size << 3) | (1 << 1) | last).to_bytes(3, "little") + b"A"

    frame = header + b"".join(block(0, 128 * 1024) for _ in range(800)) + block(1, 1) + bytes(4)
    data = HEADER.pack(MAGIC, 1, 1, 1000) + frame
    with pytest.raises(CorruptBatch, match="damaged"):
        decode_batch(data)
    assert peak_memory(lambda: decode_batch(data)) < MIB  # not the 100 MiB the blocks hold


def test_frames_without_checksum_or_size_are_refused() -> None:
    payload = msgpack.packb(ENVELOPE, use_bin_type=True)
    no_checksum = zstandard.ZstdCompressor(write_checksum=False).compress(payload)
    with pytest.raises(CorruptBatch, match="checksum"):
        decode_batch(HEADER.pack(MAGIC, 1, 1, len(payload)) + no_checksum)
    no_size = zstandard.ZstdCompressor(write_content_size=False, write_checksum=True)
    with pytest.raises(CorruptBatch, match="no size"):
        decode_batch(HEADER.pack(MAGIC, 1, 1, len(payload)) + no_size.compress(payload))


def test_flipped_byte_in_the_frame_fails_the_checksum() -> None:
    data = bytearray(VALID)
    data[len(data) // 2] ^= 0x40
    with pytest.raises(BatchFormatError):
        decode_batch(bytes(data))


def test_deep_nesting_and_huge_declared_lengths_are_rejected_cheaply() -> None:
    deep = seal(b"\x91" * 100_000 + b"\x00")
    with pytest.raises(CorruptBatch, match="StackError"):
        decode_batch(deep)
    assert peak_memory(lambda: decode_batch(deep)) < MIB
    # 120 nested arrays each declaring 2**20 elements, in 600 bytes: 1 GB of lists if the
    # declared lengths were believed, less than the decompression limit as they are not.
    declared = seal(b"\xdd\x00\x10\x00\x00" * 120)
    with pytest.raises(CorruptBatch):
        decode_batch(declared)
    assert peak_memory(lambda: decode_batch(declared)) < MAX_DECOMPRESSED
    with pytest.raises(CorruptBatch, match="max_array_len"):
        decode_batch(seal(b"\xdd\xff\xff\xff\xff"))
    with pytest.raises(CorruptBatch):
        decode_batch(seal(b"\xdb\xff\xff\xff\xff"))
    with pytest.raises(CorruptBatch, match="ext"):
        decode_batch(seal(b"\xd6\xff\x00\x00\x00\x00"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"v": 2}, "envelope.v"),
        ({"id": b"short"}, "envelope.id"),
        ({"clock": "sort-of"}, "envelope.clock"),
        ({"res": 7}, "envelope.res"),
        ({"seq": -1}, "envelope.seq"),
        ({"vehicle": ""}, "envelope.vehicle"),
        ({"signals": {"a": 1}}, "envelope.signals"),
        ({"future": {"nested": [1]}}, "nested structure"),
        ({"future": [[1]]}, "nested structure"),
    ],
)
def test_envelope_schema_violations_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedBatch, match=message.replace(".", r"\.")):
        decode_batch(sealed({**ENVELOPE, **change}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"t": [[1, 2]]}, r"signals\[0\]\.t: every element must be an integer"),
        ({"t": [1]}, "timestamps but"),
        ({"t": [2**63] + [0] * 49}, "outside int64"),
        ({"type": "complex"}, "unknown value type"),
        ({"enc": "delta"}, "not an encoding of float"),
        ({"name": ""}, "name"),
        ({"v": [1.5] * 50}, "expected an array|integer"),
        ({"scale": "0.01"}, "scale: expected float"),
    ],
)
def test_column_schema_violations_are_named(change: dict[str, Any], message: str) -> None:
    envelope = dict(ENVELOPE)
    column = dict(ENVELOPE["signals"][0])
    assert column["enc"] == "scaled"
    column.update(change)
    if change.get("enc") == "f32":
        column["type"] = "float"
        column["v"] = [1, 2]
    envelope["signals"] = [column, *ENVELOPE["signals"][1:]]
    with pytest.raises(MalformedBatch, match=message):
        decode_batch(sealed(envelope))


def test_decimal_digits_are_bounded() -> None:
    envelope = dict(ENVELOPE)
    column = {"name": "x", "type": "float", "enc": "decimal", "digits": 400, "t": [0], "v": [1]}
    envelope["signals"] = [column]
    with pytest.raises(MalformedBatch, match="digits"):
        decode_batch(sealed(envelope))


def test_float_bytes_must_be_whole_numbers_of_floats() -> None:
    envelope = dict(ENVELOPE)
    column = next(c for c in ENVELOPE["signals"] if c["enc"] == "f64")
    broken = {**column, "v": column["v"][:-3]}
    envelope["signals"] = [broken]
    with pytest.raises(MalformedBatch, match="whole number"):
        decode_batch(sealed(envelope))


def test_unknown_scalar_keys_are_ignored_for_forward_compatibility() -> None:
    envelope = {**ENVELOPE, "region": "eu", "tags": ["a", 1]}
    envelope["signals"] = [{**ENVELOPE["signals"][0], "unit": "km/h"}, *ENVELOPE["signals"][1:]]
    decoded = decode_batch(sealed(envelope))
    assert decoded.same_as(decode_batch(VALID))


def test_header_layout_is_as_documented() -> None:
    magic, version, codec, size = struct.unpack(">4sBBI", VALID[:10])
    assert (magic, version, codec) == (b"EABT", 1, 1)
    assert VALID[10:14] == b"\x28\xb5\x2f\xfd"
    assert len(zstandard.ZstdDecompressor().decompress(VALID[10:])) == size


def test_sample_and_column_counts_are_bounded_before_columns_are_decoded() -> None:
    half = (1 << 19) + 1
    column = {"name": "x", "type": "int", "enc": "delta", "t": [1] * half, "v": [1] * half}
    too_many = sealed({**ENVELOPE, "signals": [column, column]})
    with pytest.raises(MalformedBatch, match="samples, limit"):
        decode_batch(too_many)
    tiny = {"name": "x", "type": "int", "enc": "raw", "t": [], "v": []}
    with pytest.raises(MalformedBatch, match="columns, limit"):
        decode_batch(sealed({**ENVELOPE, "signals": [tiny] * ((1 << 14) + 1)}))
    # Refused before its columns are decoded: it costs less than decoding one of its columns
    # alone (a batch within the limit), although it holds twice the data.
    allowed = sealed({**ENVELOPE, "signals": [column]})
    assert len(decode_batch(allowed).signals[0].values) == half
    assert peak_memory(lambda: decode_batch(too_many)) < peak_memory(lambda: decode_batch(allowed))
