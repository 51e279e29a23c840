"""The batch encoder packs msgpack into buffers sized to the data (the RSS creep of Run 7)."""

from __future__ import annotations

import tracemalloc

import msgpack

from edge_agent.modules.telemetry.batch import (
    ClockQuality,
    Sample,
    build_batch,
    decode_batch,
    encode_batch,
)
from edge_agent.modules.telemetry.batch.packing import START_BYTES, packb

MSGPACK_BUFFER = 256 * 1024  # what msgpack.packb asks for, whatever it packs


def _batch(samples: int = 200) -> list[Sample]:
    return [
        Sample(signal=name, monotonic=i / 100, wall=1.7e9 + i / 100, value=value)
        for i in range(samples)
        for name, value in (("speed", i % 37 * 0.5), ("gear", i % 6), ("brake", i % 2 == 0))
    ]


def test_packb_writes_what_msgpack_writes() -> None:
    for value in (
        None,
        0,
        -(2**63),
        1.5,
        "ü",
        b"\x00" * 3,
        [1, [2, {"k": b"v"}]],
        {"big": bytes(600_000)},  # grows past the first buffer and past msgpack's 256 KiB
    ):
        assert packb(value) == msgpack.packb(value, use_bin_type=True)
        assert msgpack.unpackb(packb(value), raw=False) == value


def test_encoding_a_small_batch_never_asks_for_a_256_kib_buffer() -> None:
    batch = build_batch(
        _batch(), vehicle_id="VIN", stream="s", sequence=0, clock=ClockQuality.TRUSTED
    )
    encoded = encode_batch(batch)  # first use builds the shared zstd contexts: not measured
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        assert encode_batch(batch, level=3) == encoded
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decode_batch(encoded).same_as(batch)
    # Everything the encoder holds at once for 600 samples, Python objects included, is
    # well under the one buffer msgpack.packb would have asked for.
    assert peak < MSGPACK_BUFFER // 2, peak


def test_a_small_value_stays_in_the_first_buffer() -> None:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        packed = packb([1, 2, 3, "three"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(packed) < START_BYTES
    assert peak < 4 * START_BYTES, peak
