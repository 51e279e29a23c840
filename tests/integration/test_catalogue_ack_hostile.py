"""A hostile catalogue acknowledgement from the cloud cannot stop the telemetry module.

The cloud's ack (``catalog/{hash}/ack``) is parsed like every other downstream payload: size
and depth bounded. A real agent runs the telemetry module; an ack nested 100 000 deep (a
``RecursionError`` for the standard parser) and an oversize one are answers it cannot read,
and a proper ack after them is still taken by the same, running module instance.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge_agent.can.types import DecodedMessage
from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.modules.telemetry.module import TelemetryModule
from edge_agent.supervisor import Supervisor
from fixtures.supervised import running_supervisor
from fixtures.waiting import wait_until

TELEMETRY = {
    "streams": [{"name": "chassis", "signals": [{"signal": "VehicleSpeed"}, {"signal": "Gear"}]}],
    "batch_max_samples": 5,
}


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Supervisor]:
    config = validate_config(
        {
            "agent": {"vehicle_id": "v-ack", "state_dir": str(tmp_path / "state")},
            "modules": {"telemetry": {"config": TELEMETRY}},
        }
    )
    async with running_supervisor(config, ["telemetry"]) as supervisor:
        yield supervisor


async def test_deep_and_oversize_acks_are_unreadable_answers_not_a_crash(
    agent: Supervisor,
) -> None:
    supervisor = agent
    runner = supervisor.runners["telemetry"]
    module = runner.module
    assert isinstance(module, TelemetryModule)
    published = supervisor.bus.subscribe("cloud/out/catalog/#", maxsize=16)
    for index in range(5):
        await supervisor.bus.publish(
            "can/vcan0/decoded/Chassis",
            DecodedMessage(
                "vcan0",
                "Chassis",
                0x100,
                time.time(),
                time.monotonic(),
                {"VehicleSpeed": 50.0 + index, "Gear": 3},
            ),
        )
    async with asyncio.timeout(10):
        catalogue = await published.get()
    digest = catalogue.topic.rsplit("/", 1)[-1]
    ack = f"cloud/in/catalog/{digest}/ack"

    supervisor.bus.publish_nowait(ack, b"[" * 100_000)
    supervisor.bus.publish_nowait(ack, b'{"accepted": true, "pad": "' + b"x" * 100_000 + b'"}')
    await supervisor.bus.publish(ack, b'{"accepted": true}')
    shelf = module._shelf
    await wait_until(
        lambda: shelf.writing is not None, timeout=10, what="the proper ack taken after them"
    )
    writing = shelf.writing
    assert writing is not None
    assert writing.hash.hex() == digest
    refused = module.context.health.report.details.get("catalogue_refused", "")
    assert refused.startswith('{"accepted": true, "pad"')  # the last unreadable one, reported
    assert runner.module is module  # never restarted
    assert runner.state is ModuleState.RUNNING
