"""Batches cut before the clock was trusted are re-stamped by the uplink once it is."""

from __future__ import annotations

import random
from pathlib import Path

from edge_agent.batch import (
    ClockQuality,
    Sample,
    TrustPolicy,
    WallClockTrust,
    decode_batch,
    encode_samples,
)
from edge_agent.cloud.restamp import Restamper

BOOT = "boot-1"


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_000.0  # before NOT_BEFORE: not trustable
        self.mono = 500.0


def untrusted_batch(boot: str = BOOT) -> bytes:
    samples = [Sample("EgoSpeed", 500.0 + i, 1_000.0 + i, float(i)) for i in range(5)]
    return encode_samples(
        samples, vehicle_id="v", stream="s", sequence=1, clock=ClockQuality.UNTRUSTED, boot_id=boot
    )


def restamper(clocks: Clocks, tmp_path: Path) -> Restamper:
    trust = WallClockTrust(
        TrustPolicy.ALWAYS,
        timesync_flag=tmp_path / "none",
        wall=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
    )
    return Restamper(trust, boot_id=BOOT)


async def test_untrusted_batch_is_restamped_once_the_clock_is_trusted(tmp_path: Path) -> None:
    clocks = Clocks()
    uplink = restamper(clocks, tmp_path)
    assert uplink.enabled  # started before the clock could be trusted
    payload = untrusted_batch()
    assert await uplink.payload_for("telemetry/chassis", payload) == payload  # still untrusted
    clocks.wall = 1_800_000_100.0  # time sync: wall = mono + 1_799_999_600
    clocks.mono = 500.0
    fixed = decode_batch(await uplink.payload_for("telemetry/chassis", payload))
    original = decode_batch(payload)
    assert fixed.clock is ClockQuality.UNTRUSTED_RESTAMPED
    assert fixed.message_id == original.message_id
    first = next(fixed.samples())
    assert abs(first.wall - 1_800_000_100.0) < 0.01  # sample taken at monotonic 500
    assert uplink.restamped == 1


async def test_other_boot_and_other_streams_are_left_alone(tmp_path: Path) -> None:
    clocks = Clocks()
    uplink = restamper(clocks, tmp_path)
    clocks.wall = 1_800_000_100.0
    other_boot = untrusted_batch("boot-0")
    assert await uplink.payload_for("telemetry/chassis", other_boot) == other_boot
    assert await uplink.payload_for("events", b'{"kind": "brake"}') == b'{"kind": "brake"}'
    assert uplink.restamped == 0


async def test_agent_started_with_a_trusted_clock_never_decodes(tmp_path: Path) -> None:
    clocks = Clocks()
    clocks.wall = 1_800_000_000.0
    uplink = restamper(clocks, tmp_path)
    assert not uplink.enabled
    garbage = b"not a batch at all"
    assert await uplink.payload_for("telemetry/chassis", garbage) == garbage


async def test_a_v1_batch_is_restamped_as_v1(tmp_path: Path) -> None:
    # A vehicle told batch_format = 1 writes v1; re-stamping must not upgrade it to v2 even
    # when the re-encoded columns could be packed.
    noise = random.Random(2)
    samples = [
        Sample("Accel", 500.0 + i * 0.01, 1_000.0 + i * 0.01, 1500 + noise.randrange(-90, 90))
        for i in range(200)
    ]
    common = {"vehicle_id": "v", "stream": "s", "sequence": 1, "boot_id": BOOT}
    plain = encode_samples(samples, clock=ClockQuality.UNTRUSTED, pack=False, **common)
    packed = encode_samples(samples, clock=ClockQuality.UNTRUSTED, **common)
    assert (plain[4], packed[4]) == (1, 2)
    clocks = Clocks()
    uplink = restamper(clocks, tmp_path)
    clocks.wall = 1_800_000_100.0
    for original in (plain, packed):
        fixed = await uplink.payload_for("telemetry/chassis", original)
        assert fixed[4] == original[4]
        assert decode_batch(fixed).clock is ClockQuality.UNTRUSTED_RESTAMPED
