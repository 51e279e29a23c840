"""Batches and clock trust: untrusted batches carry monotonic intervals, are re-stamped later."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modules.telemetry.batch import (
    Batch,
    ClockQuality,
    Sample,
    build_batch,
    decode_batch,
    downsample,
    downsample_encoded,
    encode_batch,
    restamp,
)

BOOT = "5e1f0a4c-0000-4000-8000-000000000001"


def untrusted_batch(wall_at_start: float = 86_400.0) -> tuple[list[Sample], Batch]:
    # A car that booted with its clock at 1970-01-02 and synced later.
    samples = [Sample("speed", 50.0 + i * 0.1, wall_at_start + i * 0.1, i) for i in range(20)]
    batch = build_batch(
        samples,
        vehicle_id="V",
        stream="s",
        sequence=0,
        clock=ClockQuality.UNTRUSTED,
        boot_id=BOOT,
    )
    return samples, batch


def test_restamp_moves_wall_times_onto_the_trusted_timeline() -> None:
    samples, batch = untrusted_batch()
    true_offset = 1_760_000_000.0 - 50.0  # wall - monotonic once synchronised
    fixed = restamp(batch, true_offset, boot_id=BOOT)
    assert fixed.clock is ClockQuality.UNTRUSTED_RESTAMPED
    walls = [s.wall for s in fixed.samples()]
    assert walls == pytest.approx([s.monotonic + true_offset for s in samples], abs=1e-3)
    assert fixed.message_id == batch.message_id
    assert decode_batch(encode_batch(fixed)).same_as(fixed)


def test_restamp_is_pure_and_idempotent() -> None:
    _, batch = untrusted_batch()
    once = restamp(batch, 1000.0)
    assert restamp(once, 1000.0) == once
    assert batch.clock is ClockQuality.UNTRUSTED


def test_restamp_leaves_trusted_batches_and_other_boots_alone() -> None:
    trusted = build_batch(
        [Sample("a", 1.0, 1.7e9, 1)],
        vehicle_id="V",
        stream="s",
        sequence=0,
        clock=ClockQuality.TRUSTED,
    )
    assert restamp(trusted, 5.0) is trusted
    _, batch = untrusted_batch()
    assert restamp(batch, 5.0, boot_id="another-boot") is batch


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), st.floats(0, 2e9))
def test_untrusted_offsets_are_monotonic_intervals(jumps: list[float], offset: float) -> None:
    # The wall clock jumps around; the monotonic clock does not. Restamping uses the latter.
    samples = []
    wall = 0.0
    for i, jump in enumerate(jumps):
        wall += jump
        samples.append(Sample("x", 10.0 + i, wall, i))
    batch = build_batch(
        samples, vehicle_id="V", stream="s", sequence=0, clock=ClockQuality.UNTRUSTED
    )
    fixed = restamp(batch, offset)
    assert [s.wall for s in fixed.samples()] == pytest.approx(
        [10.0 + i + offset for i in range(len(jumps))], abs=2e-3
    )


def test_downsample_halves_every_column_and_keeps_the_identity() -> None:
    samples = [Sample("a", i, 1.7e9 + i, i) for i in range(10)]
    samples += [Sample("b", i, 1.7e9 + i, float(i) / 7) for i in range(5)]
    batch = build_batch(samples, vehicle_id="V", stream="s", sequence=3, clock=ClockQuality.TRUSTED)
    half = downsample(batch)
    assert [len(c) for c in half.signals] == [5, 3]
    assert half.decimation == 1
    assert half.signals[0].values == (0, 2, 4, 6, 8)
    encoded = encode_batch(batch)
    smaller = downsample_encoded(encoded)
    assert smaller is not None
    assert len(smaller) < len(encoded)
    decoded = decode_batch(smaller)
    assert decoded.message_id == batch.message_id
    assert decoded.decimation == 1
    assert downsample_encoded(b"not a batch") is None


def test_downsampling_keeps_the_format_version_it_was_written_in() -> None:
    # The spool's degrade hook must not turn a v1-only vehicle's batches into v2.
    noise = random.Random(4)
    samples = [
        Sample("Accel", i * 0.01, 1.7e9 + i * 0.01, 1500 + noise.randrange(-90, 90))
        for i in range(400)
    ]
    batch = build_batch(samples, vehicle_id="V", stream="s", sequence=3, clock=ClockQuality.TRUSTED)
    for pack, version in ((False, 1), (True, 2)):
        encoded = encode_batch(batch, pack=pack)
        assert encoded[4] == version
        smaller = downsample_encoded(encoded)
        assert smaller is not None
        assert smaller[4] == version
        assert decode_batch(smaller).decimation == 1
