"""The cloud link over MQTT 3.1.1 (`mqtt_version = "3.1.1"`), against a real mosquitto.

Brokers without MQTT 5 (Azure IoT Hub, older clusters) still get the whole store and
forward contract: records delivered in order, nothing lost over a cut, a persistent session
that keeps commands sent while the vehicle was offline, the retained status and last will.
What 3.1.1 cannot carry (the message-id user property) is absent, and telemetry batches are
still de-duplicated by the id inside them.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_agent.modules.telemetry.batch import ClockQuality, Sample, decode_batch, encode_samples
from edge_agent.simulator.rig.broker import LocalBroker
from edge_agent.spool import SpoolPriority
from fixtures.cloud import (
    Pki,
    cloud_side,
    link_config,
    link_module,
    link_proxy,
    link_state,
    needs_mosquitto,
    running_agent,
)
from fixtures.waiting import wait_until

pytestmark = needs_mosquitto


async def test_records_commands_and_a_cut_over_mqtt_311(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    link = link_config(pki, "veh-3", 0, mqtt_version="3.1.1")
    async with link_proxy(broker.port) as proxy, cloud_side(pki, broker.port) as cloud:
        link["port"] = proxy.port
        async with running_agent(tmp_path / "agent", "veh-3", link) as supervisor:
            await wait_until(
                lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
            )
            client = link_module(supervisor).link
            assert client.state.connects == 1
            for seq in range(20):
                await supervisor.bus.publish("cloud/out/events", {"seq": seq})
            batch = encode_samples(
                [Sample("EgoSpeed", 1.0 + i, 1.7e9 + i, 50.0 + i) for i in range(5)],
                vehicle_id="veh-3",
                stream="chassis",
                sequence=1,
                clock=ClockQuality.TRUSTED,
            )
            spool = link_module(supervisor).spool
            await spool.append("telemetry/chassis", batch, priority=SpoolPriority.TELEMETRY_HIGH)
            await wait_until(
                lambda: len(cloud.on("events")) >= 20,
                timeout=10,
                what="20 events at the cloud",
            )
            await wait_until(
                lambda: cloud.on("telemetry/chassis"),
                timeout=10,
                what="the telemetry batch at the cloud",
            )
            seqs = [json.loads(r.payload)["seq"] for r in cloud.on("events")]
            assert sorted(set(seqs)) == list(range(20))
            assert seqs[:20] == list(range(20))  # in order
            # 3.1.1 has no user properties: no message-id on the wire, but the batch has one.
            received = cloud.on("telemetry/chassis")[0]
            assert received.message_id is None
            assert decode_batch(received.payload).message_id == decode_batch(batch).message_id
            assert json.loads(cloud.on("status")[-1].payload)["state"] == "online"

            await cloud.publish("vehicles/veh-3/commands/ping", json.dumps({"id": "a"}).encode())
            await wait_until(
                lambda: cloud.json_on("commands/ping/reply"), timeout=10, what="the reply to ping a"
            )
            assert cloud.json_on("commands/ping/reply")[0]["ok"] is True

            # Cut: the will goes out, a command waits in the persistent session.
            await proxy.cut()
            await wait_until(
                lambda: link_state(supervisor) == "offline", timeout=5, what="the link offline"
            )
            await wait_until(
                lambda: json.loads(cloud.on("status")[-1].payload)["state"] == "offline",
                timeout=10,
                what="last will",
            )
            await cloud.publish("vehicles/veh-3/commands/ping", json.dumps({"id": "b"}).encode())
            for seq in range(20, 30):
                await supervisor.bus.publish("cloud/out/events", {"seq": seq})
            await proxy.restore()
            await wait_until(
                lambda: any(r["id"] == "b" for r in cloud.json_on("commands/ping/reply")),
                timeout=10,
                what="the reply to ping b, queued while offline",
            )
            assert client.state.session_present is True
            await wait_until(
                lambda: len({*map(_seq, cloud.on("events"))}) >= 30,
                timeout=10,
                what="30 distinct events at the cloud",
            )
            assert {*map(_seq, cloud.on("events"))} == set(range(30))


def _seq(received: object) -> int:
    return int(json.loads(received.payload)["seq"])  # type: ignore[attr-defined]
