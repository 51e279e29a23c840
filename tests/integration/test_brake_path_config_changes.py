"""The brake path is never restarted while the vehicle moves.

The fast path runs in its own process (as in production); the OTA module's parked guard
judges the vehicle state from the decoded ego speed, which the test publishes on the bus as
the CAN reader would. Changes the fast path can take in place apply at once without touching
its process; changes that need a new process wait until the vehicle is parked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent_topics import APPLY_DESIRED_TOPIC, APPLY_SIGNED_TOPIC
from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.supervisor import Supervisor
from edge_agent.vehicle_state import vehicle_parked
from fixtures.supervised import publish_ego_speed
from fixtures.waiting import wait_until


@dataclass
class Drive:
    supervisor: Supervisor
    channel: str
    speed_kmh: float = 50.0

    @property
    def fast_path_pid(self) -> int | None:
        module = self.supervisor.runners["fast-path"].module
        return getattr(module, "pid", None)

    def detail(self, key: str) -> Any:
        context = self.supervisor.runners["fast-path"].context
        return None if context is None else context.health.report.details.get(key)

    def table(self, **config: Any) -> dict[str, Any]:
        return {"config": {"can": {"interface": "virtual", "channel": self.channel}, **config}}

    async def request(self, topic: str, document: dict[str, Any]) -> dict[str, Any]:
        reply = await self.supervisor.bus.request(topic, document, timeout=20)
        result: dict[str, Any] = reply.payload
        return result


@pytest.fixture
async def drive(tmp_path: Path) -> AsyncIterator[Drive]:
    channel = f"brake-{uuid.uuid4().hex[:8]}"
    config = validate_config(
        {
            "agent": {"vehicle_id": "v-brake", "state_dir": str(tmp_path)},
            "modules": {
                "fast-path": {"config": {"can": {"interface": "virtual", "channel": channel}}},
                "ota": {
                    "config": {
                        "metadata_url": "http://127.0.0.1:9/metadata/",
                        "targets_url": "http://127.0.0.1:9/targets/",
                        "hardware_id": "bench-ecu",
                        "guard": {"bus": "vehicle", "parked_for_s": 0.3},
                    }
                },
            },
        }
    )
    supervisor = Supervisor(config)
    task = asyncio.create_task(supervisor.run())
    drive = Drive(supervisor, channel)
    speed = asyncio.create_task(publish_ego_speed(drive.supervisor.bus, lambda: drive.speed_kmh))
    try:
        await wait_until(
            lambda: all(r.state is ModuleState.RUNNING for r in supervisor.runners.values()),
            timeout=30,
            what="modules running",
        )
        assert drive.fast_path_pid is not None

        async def moving() -> bool:
            return (await vehicle_parked(supervisor.bus))[1].startswith("vehicle moving")

        await wait_until(moving, timeout=20, what="the guard to see the vehicle moving")
        assert (await vehicle_parked(supervisor.bus))[0] is False
        yield drive
    finally:
        speed.cancel()
        supervisor.request_stop()
        assert await asyncio.wait_for(task, 30) == 0


async def test_a_tunable_change_while_moving_applies_in_place(drive: Drive) -> None:
    pid = drive.fast_path_pid
    result = await drive.request(
        APPLY_DESIRED_TOPIC,
        {"version": "1", "modules": {"fast-path": {"config": {"latency_budget_ms": 25.0}}}},
    )
    assert result["accepted"], result
    assert result["report"]["reconfigured"] == ["fast-path"]
    await wait_until(
        lambda: drive.detail("latency_budget_ms") == 25.0, timeout=10, what="the child's new budget"
    )
    assert drive.fast_path_pid == pid


async def test_signed_thresholds_while_moving_apply_in_place(drive: Drive) -> None:
    pid = drive.fast_path_pid
    table = drive.table(policy={"full_ttc_s": 1.2}, tick_s=0.01)
    result = await drive.request(
        APPLY_SIGNED_TOPIC, {"version": "1", "modules": {"fast-path": table}}
    )
    assert result["accepted"], result
    assert result["report"]["reconfigured"] == ["fast-path"]
    assert result["report"]["deferred"] == []
    await wait_until(
        lambda: (drive.detail("policy") or {}).get("full_ttc_s") == 1.2, timeout=10, what="policy"
    )
    assert drive.fast_path_pid == pid


async def test_a_new_channel_while_moving_waits_until_parked(drive: Drive) -> None:
    supervisor, pid = drive.supervisor, drive.fast_path_pid
    new_channel = f"{drive.channel}-b"
    table = {"config": {"can": {"interface": "virtual", "channel": new_channel}}}
    result = await drive.request(
        APPLY_SIGNED_TOPIC, {"version": "1", "modules": {"fast-path": table}}
    )
    assert result["accepted"], result
    assert result["report"]["deferred"] == ["fast-path"]
    assert result["report"]["restarted"] == []
    assert result["report"]["waiting"].startswith("vehicle moving")
    waiting = supervisor.snapshot()["agent"]["config"]["waiting_for_parked"]
    assert waiting["modules"] == ["fast-path"]
    runner = supervisor.runners["fast-path"]
    assert runner.plan.config.can.channel == drive.channel  # type: ignore[attr-defined]
    assert drive.fast_path_pid == pid
    assert runner.state is ModuleState.RUNNING

    def restarted_on_the_new_channel() -> bool:
        runner = supervisor.runners.get("fast-path")
        return (
            runner is not None
            and runner.state is ModuleState.RUNNING
            and runner.plan.config.can.channel == new_channel  # type: ignore[attr-defined]
        )

    drive.speed_kmh = 0.0
    await wait_until(restarted_on_the_new_channel, timeout=20, what="restart once parked")
    assert drive.fast_path_pid not in (None, pid)
    assert supervisor.snapshot()["agent"]["config"]["waiting_for_parked"] is None
