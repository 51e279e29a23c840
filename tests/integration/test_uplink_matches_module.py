"""The uplink estimator cuts the batches the running telemetry module cuts, sample for sample."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from edge_agent.can.types import DecodedMessage, decoded_topic
from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.modules.telemetry.batch import decode_batch
from edge_agent.modules.telemetry.collection import Collection
from edge_agent.modules.telemetry.config import TelemetryConfig
from edge_agent.modules.telemetry.estimate import BatchEncoder
from edge_agent.spool import Spool
from edge_agent.supervisor import Supervisor
from fixtures.waiting import wait_until

T0 = 1_800_000_000.0
OPTIONS: dict[str, Any] = {
    "clock_trust": "always",
    "batch_max_samples": 70,
    "batch_max_age_s": 3600,  # only size cuts, captures and the flush at stop: no timer races
    "streams": [
        {
            "name": "chassis",
            "signals": [
                {"signal": "EgoSpeed", "scheme": "periodic", "period_s": 0.05},
                {"signal": "LongitudinalAccel", "scheme": "on-change", "deadband": 0.3},
            ],
        },
        {"name": "raw", "signals": [{"signal": "YawRate"}]},
    ],
    "captures": [
        {
            "name": "hard-braking",
            "stream": "hard-braking",
            "when": {"signal": "LongitudinalAccel", "op": "<", "value": -4.0},
            "signals": ["EgoSpeed", "YawRate"],
            "pre_s": 0.5,
            "post_s": 0.3,
        }
    ],
}
Batches = dict[tuple[str, int], list[tuple[str, float, object]]]


def messages(monotonic_base: float) -> list[DecodedMessage]:
    """4 s of 100 Hz EgoMotion with a hard brake at 2 s."""
    found = []
    for i in range(400):
        t = i / 100
        accel = -6.0 if 2.0 <= t < 2.2 else 0.1 * (i % 9)
        found.append(
            DecodedMessage(
                bus="chassis",
                message="EgoMotion",
                frame_id=0x100,
                timestamp=T0 + t,
                monotonic=monotonic_base + t,
                signals={
                    "EgoSpeed": 50.0 + i * 0.01,
                    "LongitudinalAccel": accel,
                    "YawRate": round(0.01 * (i % 13), 2),
                },
            )
        )
    return found


def contents(payloads: list[bytes]) -> Batches:
    found: Batches = {}
    for payload in payloads:
        batch = decode_batch(payload)
        found[(batch.stream, batch.sequence)] = sorted(
            (s.signal, s.wall, s.value) for s in batch.samples()
        )
    return found


async def test_estimator_batches_equal_the_module_batches(tmp_path: Path) -> None:
    # Message times run 100 s ahead of the module's clock, so its timer never cuts by age
    # nor closes a capture: every cut depends on the messages alone, as in the estimator.
    stream = messages(time.monotonic() + 100.0)
    config = validate_config(
        {
            "agent": {"vehicle_id": "tel-1", "state_dir": str(tmp_path)},
            "modules": {"telemetry": {"config": OPTIONS}},
        }
    )
    supervisor = Supervisor(config)
    task = asyncio.create_task(supervisor.run())
    await wait_until(
        lambda: supervisor.runners["telemetry"].state is ModuleState.RUNNING,
        what="the telemetry module running",
    )
    for message in stream:
        await supervisor.bus.publish(decoded_topic("chassis", "EgoMotion"), message)
    module = supervisor.runners["telemetry"].module
    await wait_until(
        lambda: module.counters["messages"] == len(stream), what="every message taken in"
    )
    supervisor.request_stop()
    assert await task == 0
    spool = Spool(tmp_path / "spool" / "spool.db")
    try:
        from_module = contents([record.payload for record in spool.lease(1000)])
    finally:
        spool.close()

    collection = Collection(TelemetryConfig.model_validate(OPTIONS))
    encoder = BatchEncoder(vehicle_id="tel-1")
    cuts = [cut for message in stream for cut in collection.ingest(message)]
    cuts += collection.flush()
    from_estimator = contents([encoder.encode(cut).batch for cut in cuts])

    assert {key[0] for key in from_module} == {"chassis", "raw", "hard-braking"}
    assert len(from_module) >= 6
    assert from_estimator == from_module
