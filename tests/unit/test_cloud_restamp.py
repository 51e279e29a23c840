"""Batches cut before the clock was trusted are re-stamped by the uplink once it is.

The uplink knows no batch format: it finds the re-stamp transform the telemetry module
registers for its streams in the agent's stream registry.
"""

from __future__ import annotations

import random
from pathlib import Path

from edge_agent.clocktrust import TrustPolicy, WallClockTrust
from edge_agent.modules.cloud_link.restamp import Restamper
from edge_agent.modules.telemetry.batch import ClockQuality, Sample, decode_batch, encode_samples
from edge_agent.modules.telemetry.transforms import STREAM_FILTER, batch_transforms
from edge_agent.streams import StreamRegistry, StreamTransforms

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
    streams = StreamRegistry()
    streams.register(STREAM_FILTER, batch_transforms(BOOT))
    return Restamper(streams, trust)


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


async def test_records_of_streams_without_a_transform_go_as_they_are(tmp_path: Path) -> None:
    clocks = Clocks()
    uplink = restamper(clocks, tmp_path)
    clocks.wall = 1_800_000_100.0
    payload = untrusted_batch()
    # A batch on a stream no module registered a transform for is opaque to the link.
    assert await uplink.payload_for("diag/dtc", payload) == payload
    assert uplink.restamped == 0


async def test_a_transform_that_declines_leaves_the_record_as_it_is(tmp_path: Path) -> None:
    clocks = Clocks()
    uplink = restamper(clocks, tmp_path)
    seen: list[tuple[bytes, float]] = []

    def decline(payload: bytes, offset: float) -> bytes | None:
        seen.append((payload, offset))
        return None

    uplink.streams.register("catalog/+", StreamTransforms(restamp=decline))
    assert await uplink.payload_for("catalog/abc", b"x") == b"x"  # clock still untrusted
    assert seen == []
    clocks.wall = 1_800_000_100.0
    assert await uplink.payload_for("catalog/abc", b"x") == b"x"
    assert seen == [(b"x", 1_800_000_100.0 - 500.0)]
    assert uplink.restamped == 0
