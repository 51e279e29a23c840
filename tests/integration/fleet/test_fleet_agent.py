"""The agent's own cloud link, unchanged, over MQTT 3.1.1 and mutual TLS to NATS: rows land.

And the down path: desired state sent with ``edge-agent-cloud desired --mqtt-version 3.1.1``
as the MQTT user ``cloud`` is retained by NATS and reaches the vehicle when it connects.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from edge_agent.fleet.cluster import NatsCluster
from edge_agent.fleet.store import counts
from edge_agent.modules.telemetry.batch import decode_batch
from edge_agent.spool import SpoolPriority
from fixtures.cloud import link_module, link_state, running_agent
from fixtures.fleet import batch_for, mqtt_client, rows, running_worker, wait_for_rows
from fixtures.waiting import wait_until


def _link(cluster: NatsCluster, vehicle: str, node: int) -> dict[str, object]:
    issued = cluster.client_tls(vehicle)
    return {
        "host": "127.0.0.1",
        "port": cluster.mqtt_addresses[node][1],
        "mqtt_version": "3.1.1",
        "tls": {
            "ca_file": str(cluster.pki.ca_file),
            "cert_file": str(issued.cert_file),
            "key_file": str(issued.key_file),
        },
        "keepalive_s": 2,
        "connect_timeout_s": 2.0,
        "operation_timeout_s": 3.0,
        "reconnect_initial_s": 0.1,
        "reconnect_max_s": 0.5,
        "poll_interval_s": 0.05,
        "reported_min_interval_s": 0.0,
    }


async def test_the_agents_cloud_link_lands_its_batches_as_rows(
    nats_cluster: NatsCluster, fleet_dsn: str, tmp_path: Path
) -> None:
    sent = [batch_for("veh-2", sequence, samples=6) for sequence in range(1, 13)]
    async with (
        running_worker(nats_cluster, fleet_dsn),
        running_agent(tmp_path / "agent", "veh-2", _link(nats_cluster, "veh-2", 1)) as agent,
    ):
        await wait_until(lambda: link_state(agent) == "online", timeout=20, what="link online")
        spool = link_module(agent).spool
        for batch in sent:
            await spool.append("telemetry/chassis", batch, priority=SpoolPriority.TELEMETRY_HIGH)
        await agent.bus.publish("cloud/out/events", {"kind": "marker", "n": 1})
        await wait_for_rows(fleet_dsn, "SELECT count(*) FROM batches", 12)
        await wait_for_rows(fleet_dsn, "SELECT count(*) FROM events WHERE topic = 'events'", 1)
    ids = {r[0] for r in await rows(fleet_dsn, "SELECT message_id FROM batches")}
    assert ids == {decode_batch(batch).message_id for batch in sent}
    status = await rows(fleet_dsn, "SELECT status FROM vehicles WHERE vehicle = 'veh-2'")
    assert status
    assert status[0][0] is not None
    found = await counts(fleet_dsn)
    assert (found["samples"], found["duplicate_rows"], found["parked"]) == (72, 0, 0)


async def test_desired_state_goes_down_retained_through_the_cloud_user(
    nats_cluster: NatsCluster,
) -> None:
    cloud = nats_cluster.client_tls("cloud")
    host, port = nats_cluster.mqtt_addresses[2]
    document = json.dumps({"version": "fleet-7", "modules": {}})
    command = [
        str(Path(sys.executable).parent / "edge-agent-cloud"),
        "desired",
        "veh-1",
        document,
        "--host",
        host,
        "--port",
        str(port),
        "--mqtt-version",
        "3.1.1",
        "--ca",
        str(nats_cluster.pki.ca_file),
        "--cert",
        str(cloud.cert_file),
        "--key",
        str(cloud.key_file),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    # The vehicle connects afterwards, to another node: the retained copy is handed over.
    async with mqtt_client(nats_cluster, "veh-1", node=0, clean=True) as vehicle:
        await vehicle.subscribe("vehicles/veh-1/state/desired", qos=1)
        async with asyncio.timeout(20):
            async for message in vehicle.messages:
                assert message.retain
                assert json.loads(message.payload) == json.loads(document)
                break
