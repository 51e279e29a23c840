"""The batch format's transforms as the telemetry module registers them for its streams."""

from __future__ import annotations

import random

import pytest

from edge_agent.modules.telemetry.batch import (
    ClockQuality,
    Sample,
    decode_batch,
    encode_samples,
    restamp_encoded,
)
from edge_agent.modules.telemetry.transforms import STREAM_FILTER, batch_transforms
from edge_agent.streams import StreamRegistry

BOOT = "boot-1"
OFFSET = 1_799_999_600.0  # wall - monotonic once the clock is trusted


def batch(clock: ClockQuality = ClockQuality.UNTRUSTED, boot: str = BOOT) -> bytes:
    noise = random.Random(3)  # noisy values: halving them must save bytes
    samples = [
        Sample("EgoSpeed", 500.0 + i * 0.1, 1_000.0 + i * 0.1, round(noise.gauss(0, 50), 2))
        for i in range(200)
    ]
    return encode_samples(
        samples, vehicle_id="v", stream="chassis", sequence=1, clock=clock, boot_id=boot
    )


def registry() -> StreamRegistry:
    streams = StreamRegistry()
    streams.register(STREAM_FILTER, batch_transforms(BOOT))
    return streams


def test_telemetry_streams_get_both_transforms() -> None:
    streams = registry()
    transforms = streams.transforms_for("telemetry/chassis")
    assert transforms is not None
    assert transforms.degrade is not None
    assert transforms.restamp is not None
    assert streams.transforms_for("events") is None


def test_degrade_halves_a_batch_and_keeps_its_identity() -> None:
    original = batch(ClockQuality.TRUSTED)
    smaller = registry().degrade("telemetry/chassis", original)
    assert smaller is not None
    assert len(smaller) < len(original)
    decoded = decode_batch(smaller)
    assert decoded.decimation == 1
    assert decoded.message_id == decode_batch(original).message_id


def test_restamp_moves_an_untrusted_batch_of_this_boot_onto_trusted_time() -> None:
    restamp = registry().restamp_for("telemetry/chassis")
    assert restamp is not None
    original = batch()
    fixed = restamp(original, OFFSET)
    assert fixed is not None
    decoded = decode_batch(fixed)
    assert decoded.clock is ClockQuality.UNTRUSTED_RESTAMPED
    assert decoded.message_id == decode_batch(original).message_id
    assert abs(next(decoded.samples()).wall - (500.0 + OFFSET)) < 0.01


@pytest.mark.parametrize(
    "payload",
    [
        batch(ClockQuality.TRUSTED),
        batch(boot="boot-0"),  # another boot's monotonic clock: the offset says nothing
        b"not a batch",
    ],
    ids=["trusted", "other-boot", "not-a-batch"],
)
def test_restamp_declines_what_needs_no_correction(payload: bytes) -> None:
    assert restamp_encoded(payload, OFFSET, boot_id=BOOT) is None
