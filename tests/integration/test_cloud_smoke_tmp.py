from __future__ import annotations
import asyncio, json
from pathlib import Path
from fixtures.cloud import *  # noqa
from edge_agent.bench.broker import LocalBroker

pytestmark = needs_mosquitto

async def test_smoke(pki: Pki, broker: LocalBroker, tmp_path: Path) -> None:
    async with cloud_side(pki, broker.port) as cloud:
        async with running_agent(tmp_path / "agent", "veh-1", link_config(pki, "veh-1", broker.port)) as sup:
            await until(lambda: link_state(sup) == "online", 10)
            for i in range(20):
                await sup.bus.publish(f"cloud/out/telemetry/chassis", {"seq": i})
            await until(lambda: len(cloud.on("telemetry/chassis")) >= 20, 10)
            await until(lambda: cloud.on("state/reported"), 10)
            print(cloud.json_on("state/reported")[-1])
            print([r.message_id for r in cloud.on("telemetry/chassis")][:3])
            print(cloud.json_on("status"))
        await until(lambda: cloud.json_on("status")[-1]["state"] == "offline", 5)
        print(cloud.json_on("status"))
