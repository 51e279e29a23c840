"""Clearing DTCs, the one diagnostic write: only a signed privileged setting and parked.

A real supervisor runs the diagnostics module (against the simulated ECUs on python-can's
virtual bus) and the OTA module, whose parked guard judges the vehicle from the decoded
speed the test publishes as the CAN reader would. The signed config document goes where
the OTA module hands it after verifying it (``agent/config/signed``; the verification
itself is tests/integration/test_ota_config_targets.py's). The cloud's ``clear_dtcs``
command is refused while the setting is off, refused when a desired state tries to turn it
on, refused while the vehicle moves, and clears the ECU's codes once it is parked.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import can
import pytest

from edge_agent.agent_topics import APPLY_DESIRED_TOPIC, APPLY_SIGNED_TOPIC
from edge_agent.bus import RequestFailed
from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.simulator.ecus import EcuServer, SimulatedEcu, brake_ecu, engine_ecu
from edge_agent.supervisor import Supervisor
from edge_agent.vehicle_state import vehicle_parked
from fixtures.supervised import publish_ego_speed
from fixtures.waiting import wait_until


@dataclass
class Workshop:
    supervisor: Supervisor
    engine: SimulatedEcu
    channel: str
    speed_kmh: float = 30.0

    def diagnostics(self, **options: Any) -> dict[str, Any]:
        config = {
            "interface": "virtual",
            "channel": self.channel,
            "timeout_s": 0.2,
            "dtc_interval_s": 0.1,
            "signal_interval_s": 0.1,
            **options,
        }
        return {"config": config}

    async def clear(self) -> dict[str, Any]:
        reply = await self.supervisor.bus.request(
            "agent/commands/clear_dtcs", {"ecu": "engine"}, timeout=10
        )
        result: dict[str, Any] = reply.payload
        return result

    async def change(self, topic: str, table: dict[str, Any]) -> dict[str, Any]:
        document = {"version": "1", "modules": {"diagnostics": table}}
        reply = await self.supervisor.bus.request(topic, document, timeout=20)
        result: dict[str, Any] = reply.payload
        return result


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Workshop]:
    channel = f"clear-{uuid.uuid4().hex[:8]}"
    ecu_bus = can.Bus(interface="virtual", channel=channel)
    engine = engine_ecu()
    engine.set_dtc("P0562")
    server = EcuServer(ecu_bus, [engine, brake_ecu()])
    shop = Workshop(None, engine, channel)  # type: ignore[arg-type]
    config = validate_config(
        {
            "agent": {"vehicle_id": "v-clear", "state_dir": str(tmp_path)},
            "modules": {
                "diagnostics": shop.diagnostics(),
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
    shop.supervisor = Supervisor(config)
    task = asyncio.create_task(shop.supervisor.run())
    speed = asyncio.create_task(publish_ego_speed(shop.supervisor.bus, lambda: shop.speed_kmh))
    try:
        await wait_until(
            lambda: all(r.state is ModuleState.RUNNING for r in shop.supervisor.runners.values()),
            timeout=30,
            what="modules running",
        )

        async def moving() -> bool:
            return (await vehicle_parked(shop.supervisor.bus))[1].startswith("vehicle moving")

        await wait_until(moving, timeout=20, what="the guard to see the vehicle moving")
        yield shop
    finally:
        speed.cancel()
        shop.supervisor.request_stop()
        assert await asyncio.wait_for(task, 30) == 0
        server.close()
        ecu_bus.shutdown()


async def test_clear_dtcs_runs_only_when_signed_and_parked(shop: Workshop) -> None:
    upstream = shop.supervisor.bus.subscribe("cloud/out/diag/dtc", maxsize=100)
    with pytest.raises(RequestFailed, match="read-only unless the signed setting"):
        await shop.clear()

    # A desired state from the cloud cannot turn it on: the setting is privileged.
    refused = await shop.change(APPLY_DESIRED_TOPIC, shop.diagnostics(clear_dtcs_when_parked=True))
    assert not refused["accepted"]
    assert "clear_dtcs_when_parked" in " ".join(refused["errors"])
    with pytest.raises(RequestFailed, match="read-only unless the signed setting"):
        await shop.clear()

    # A signed config can; the module restarts with it.
    applied = await shop.change(APPLY_SIGNED_TOPIC, shop.diagnostics(clear_dtcs_when_parked=True))
    assert applied["accepted"], applied
    runner = shop.supervisor.runners["diagnostics"]
    await wait_until(
        lambda: (
            runner.state is ModuleState.RUNNING
            and runner.module is not None
            and runner.module.config.clear_dtcs_when_parked
        ),
        timeout=20,
        what="diagnostics restarted with the signed setting",
    )

    # Still moving: refused, and the code is still there.
    with pytest.raises(RequestFailed, match="vehicle moving"):
        await shop.clear()
    assert "P0562" in shop.engine.dtcs

    shop.speed_kmh = 0.0

    async def parked() -> bool:
        return (await vehicle_parked(shop.supervisor.bus))[0]

    await wait_until(parked, timeout=20, what="the guard to see the vehicle parked")
    assert await shop.clear() == {"ecu": "engine", "cleared": True}
    assert shop.engine.dtcs == {}  # the ECU really cleared its memory

    async def cleared_upstream() -> bool:
        while upstream.qsize() > 0:
            event = (await upstream.get()).payload
            if (event["code"], event["change"]) == ("P0562", "cleared"):
                return True
        return False

    await wait_until(cleared_upstream, timeout=20, what="the cleared event upstream")
