"""The telemetry module in a real supervisor with the real spool: durable batches that decode."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from spool_helpers import telemetry_batch

from edge_agent.agent_topics import APPLY_DESIRED_TOPIC
from edge_agent.can.types import DecodedMessage, decoded_topic
from edge_agent.clock import Clock, ManualClock
from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.modules.telemetry.batch import decode_batch
from edge_agent.spool import SpoolPriority
from edge_agent.supervisor import Supervisor
from fixtures.clock import next_sleep
from fixtures.waiting import wait_until

T0 = 1_800_000_000.0


def telemetry_options(**overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "clock_trust": "always",
        "batch_max_samples": 50,
        "batch_max_age_s": 60,
        "streams": [
            {
                "name": "chassis",
                "priority": "telemetry-high",
                "signals": [
                    {"signal": "EgoSpeed", "scheme": "periodic", "period_s": 0.1},
                    {"signal": "LongitudinalAccel", "scheme": "on-change", "deadband": 0.5},
                ],
            }
        ],
        "captures": [
            {
                "name": "hard-braking",
                "stream": "hard-braking",
                "when": {"signal": "LongitudinalAccel", "op": "<", "value": -4.0},
                "signals": ["EgoSpeed", "LongitudinalAccel"],
                "pre_s": 1.0,
                "post_s": 0.5,
            }
        ],
    }
    options.update(overrides)
    return options


async def started(
    tmp_path: Path, options: dict[str, Any], clock: Clock | None = None
) -> tuple[Supervisor, asyncio.Task[int]]:
    config = validate_config(
        {
            "agent": {"vehicle_id": "tel-1", "state_dir": str(tmp_path)},
            "modules": {"telemetry": {"config": options}},
        }
    )
    supervisor = Supervisor(config, clock=clock)
    task = asyncio.create_task(supervisor.run())
    await wait_until(
        lambda: supervisor.runners["telemetry"].state is ModuleState.RUNNING,
        what="the telemetry module running",
    )
    return supervisor, task


async def drive(supervisor: Supervisor, seconds: float, brake_at: float | None = None) -> None:
    """100 Hz EgoMotion messages with sample times spaced 10 ms apart (faster than real time)."""
    steps = int(seconds * 100)
    for i in range(steps):
        t = i / 100
        accel = -6.0 if brake_at is not None and brake_at <= t < brake_at + 0.3 else 0.2 * (i % 7)
        message = DecodedMessage(
            bus="chassis",
            message="EgoMotion",
            frame_id=0x100,
            timestamp=T0 + t,
            monotonic=1000.0 + t,
            signals={"EgoSpeed": 50.0 + i * 0.01, "LongitudinalAccel": accel},
        )
        await supervisor.bus.publish(decoded_topic("chassis", "EgoMotion"), message)
        if i % 50 == 0:
            await asyncio.sleep(0)


async def spooled(
    supervisor: Supervisor, expected_streams: set[str], timeout: float = 10.0
) -> dict[str, list[Any]]:
    """Records leased from the spool, by stream, once every expected stream has one."""
    spool = supervisor.spool
    assert spool is not None
    by_stream: dict[str, list[Any]] = {}

    async def every_stream_spooled() -> bool:
        for record in await spool.lease(100):
            by_stream.setdefault(record.stream, []).append(record)
        return expected_streams <= set(by_stream)

    await wait_until(
        every_stream_spooled,
        timeout=timeout,
        what=f"batches of {sorted(expected_streams)} in the spool",
        poll_s=0.05,
    )
    return by_stream


async def test_streams_become_durable_batches_that_decode(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path, telemetry_options())
    await drive(supervisor, 6.0)
    records = await spooled(supervisor, {"telemetry/chassis"})
    record = records["telemetry/chassis"][0]
    batch = decode_batch(record.payload)
    assert batch.vehicle_id == "tel-1"
    assert batch.stream == "chassis"
    assert batch.message_id == record.message_id  # duplicates can be dropped by this id
    assert batch.sequence == 1
    speeds = [c for c in batch.signals if c.name == "EgoSpeed"]
    assert speeds, [c.name for c in batch.signals]
    # periodic at 0.1 s over 10 ms readings: every 10th reading
    gaps = [b - a for a, b in zip(speeds[0].offsets, speeds[0].offsets[1:], strict=False)]
    assert all(gap >= 99 for gap in gaps), gaps  # ms ticks
    supervisor.request_stop()
    assert await task == 0


async def test_a_quiet_stream_is_cut_when_its_batch_ages_out(
    tmp_path: Path, manual_clock: ManualClock
) -> None:
    # Sample times start at monotonic 1000 s, where the manual clock starts too.
    options = telemetry_options(batch_max_samples=100_000, batch_max_age_s=60)
    supervisor, task = await started(tmp_path, options, clock=manual_clock)
    module = supervisor.runners["telemetry"].module
    assert supervisor.spool is not None
    await drive(supervisor, 1.0)
    await wait_until(lambda: module.counters["samples"] > 0, what="samples collected")
    assert await next_sleep(manual_clock, what="the age check waiting") > 0

    async def age_check_ran(seconds: float) -> None:
        # The check wakes, looks at the buffers and sleeps again on the clock.
        assert manual_clock.advance(seconds) == 1
        await wait_until(lambda: manual_clock.sleepers == 1, what="the age check done")

    await age_check_ran(59.5)  # the first sample is 59.5 s old: not yet
    details = supervisor.snapshot()["modules"]["telemetry"]["details"]
    assert details["buffered"] > 0
    assert details["batches"] == 0
    await age_check_ran(1.0)  # 60.5 s: cut
    records = await spooled(supervisor, {"telemetry/chassis"})
    assert len(records["telemetry/chassis"]) == 1
    assert module.counters["batches"] == 1
    supervisor.request_stop()
    assert await task == 0


async def test_hard_braking_capture_keeps_pre_and_post_windows(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path, telemetry_options())
    await drive(supervisor, 5.0, brake_at=3.0)
    records = await spooled(supervisor, {"telemetry/hard-braking"})
    batch = decode_batch(records["telemetry/hard-braking"][0].payload)
    samples = list(batch.samples())
    times = sorted(s.wall - T0 for s in samples)
    assert 1.95 <= times[0] <= 2.05  # 1 s before the trigger at 3.0
    assert 3.45 <= times[-1] <= 3.5  # 0.5 s after it
    # native rate: 100 Hz for 1.5 s, two signals
    assert len(samples) >= 2 * 140
    supervisor.request_stop()
    assert await task == 0


async def test_snapshot_request_triggers_a_capture(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path, telemetry_options())
    await drive(supervisor, 2.0)
    reply = await supervisor.bus.request(
        "telemetry/snapshot", {"capture": "hard-braking"}, timeout=5
    )
    assert reply.payload == {"started": ["hard-braking"]}
    supervisor.request_stop()
    assert await task == 0


async def test_reconfigured_in_place_without_restart(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path, telemetry_options())
    runner = supervisor.runners["telemetry"]
    module = runner.module
    options = telemetry_options(batch_max_samples=10)
    reply = await supervisor.bus.request(
        APPLY_DESIRED_TOPIC,
        {"version": 2, "modules": {"telemetry": {"config": options}}},
        timeout=5,
    )
    assert reply.payload["report"]["reconfigured"] == ["telemetry"]
    assert runner.module is module
    assert module.config.batch_max_samples == 10
    supervisor.request_stop()
    assert await task == 0


async def test_partial_batches_are_flushed_to_the_spool_on_stop(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path, telemetry_options(batch_max_samples=100_000))
    await drive(supervisor, 1.0)
    await wait_until(
        lambda: supervisor.runners["telemetry"].module.counters["samples"] > 0,
        what="samples collected",
    )
    supervisor.request_stop()
    assert await task == 0
    from edge_agent.spool import Spool

    spool = Spool(tmp_path / "spool" / "spool.db")
    try:
        streams = {r.stream for r in spool.lease(100)}
    finally:
        spool.close()
    assert "telemetry/chassis" in streams


async def test_the_agent_spool_shrinks_telemetry_with_the_transform_telemetry_registered(
    tmp_path: Path,
) -> None:
    # The supervisor and the spool know no batch format: the spool degrades a record through
    # the stream registry, where the running telemetry module put the batch transforms.
    config = validate_config(
        {
            "agent": {"vehicle_id": "tel-1", "state_dir": str(tmp_path)},
            "spool": {"max_mb": 0.1, "reserve_mb": 0},
            "modules": {"telemetry": {"config": telemetry_options()}},
        }
    )
    supervisor = Supervisor(config)
    task = asyncio.create_task(supervisor.run())
    try:
        await wait_until(
            lambda: supervisor.runners["telemetry"].state is ModuleState.RUNNING,
            what="the telemetry module running",
        )
        assert supervisor.spool is not None
        assert supervisor.streams.restamp_for("telemetry/cabin") is not None
        assert supervisor.streams.transforms_for("events") is None
        for sequence in range(120):
            for stream in ("telemetry/cabin", "diag/cabin"):
                result = await supervisor.spool.append(
                    stream, telemetry_batch(sequence), priority=SpoolPriority.TELEMETRY_LOW
                )
                assert result.stored
        records = await supervisor.spool.lease(1000, priorities=[SpoolPriority.TELEMETRY_LOW])
        batches = [decode_batch(r.payload) for r in records if r.stream == "telemetry/cabin"]
        # The registered stream was downsampled (coarser batches, same identity) ...
        assert max(b.decimation for b in batches) >= 1
        # ... a stream with no transform was carried opaque: thinned or dropped, never rewritten.
        opaque = [decode_batch(r.payload) for r in records if r.stream == "diag/cabin"]
        assert all(b.decimation == 0 for b in opaque)
        assert len(opaque) < 120
        await supervisor.spool.release_all()
    finally:
        supervisor.request_stop()
        assert await asyncio.wait_for(task, 15) == 0
