"""Each vehicle is confined to its own topics on the NATS cluster, as by the mosquitto ACL.

Attacker's view: vehicle veh-2 (its own valid certificate) tries to read veh-1's commands
and telemetry, write veh-1's telemetry, plant its own desired state, and reach the NATS
port as veh-1 without a password. Markers prove nothing crossed over.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import aiomqtt
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import NoServersError

from edge_agent.fleet.cluster import NatsCluster
from edge_agent.fleet.server_config import certificate_user
from edge_agent.simulator.certs import DevCA
from fixtures.fleet import mqtt_client
from fixtures.waiting import wait_until


async def _drain(client: aiomqtt.Client, seen: list[tuple[str, bytes]]) -> None:
    async for message in client.messages:
        seen.append((str(message.topic), bytes(message.payload)))


async def test_cross_vehicle_publish_and_subscribe_are_refused(nats_cluster: NatsCluster) -> None:
    spied: list[tuple[str, bytes]] = []
    own: list[tuple[str, bytes]] = []
    async with (
        mqtt_client(nats_cluster, "veh-2", node=2) as spy,
        mqtt_client(nats_cluster, "veh-1", node=0) as victim,
        mqtt_client(nats_cluster, "cloud", node=1, clean=True) as cloud,
    ):
        await victim.subscribe("vehicles/veh-1/commands/+", qos=1)
        for stolen in ("vehicles/veh-1/#", "vehicles/+/commands/+", "$MQTT/sub/#", "#"):
            with contextlib.suppress(aiomqtt.MqttError):
                await spy.subscribe(stolen, qos=1)
        await spy.subscribe("vehicles/veh-2/commands/+", qos=1)
        spy_task = asyncio.create_task(_drain(spy, spied))
        victim_task = asyncio.create_task(_drain(victim, own))
        cloud_seen: list[tuple[str, bytes]] = []
        await cloud.subscribe("vehicles/+/telemetry/#", qos=1)
        cloud_task = asyncio.create_task(_drain(cloud, cloud_seen))
        try:
            # veh-2 writes as veh-1, and plants desired state for itself: dropped by NATS.
            await spy.publish("vehicles/veh-1/telemetry/chassis", b"FORGED-MARKER", qos=1)
            await spy.publish("vehicles/veh-2/state/desired", b"PLANTED-MARKER", qos=1)
            await cloud.publish("vehicles/veh-1/commands/ping", b"SECRET-MARKER", qos=1)
            await victim.publish("vehicles/veh-1/telemetry/chassis", b"GENUINE-MARKER", qos=1)
            # The control markers: both reach who may see them, after everything above.
            await cloud.publish("vehicles/veh-2/commands/ping", b"SPY-CONTROL", qos=1)
            await wait_until(
                lambda: (
                    (b"SPY-CONTROL" in {p for _, p in spied})
                    and (b"SECRET-MARKER" in {p for _, p in own})
                    and (b"GENUINE-MARKER" in {p for _, p in cloud_seen})
                ),
                timeout=20,
                what="the control markers",
                details=lambda: (spied, own, cloud_seen),
            )
        finally:
            for task in (spy_task, victim_task, cloud_task):
                task.cancel()
            await asyncio.gather(spy_task, victim_task, cloud_task, return_exceptions=True)
    assert [p for _, p in spied] == [b"SPY-CONTROL"]
    assert b"FORGED-MARKER" not in {p for _, p in cloud_seen}
    log = "".join(nats_cluster.log_file(i).read_text() for i in range(3))
    assert 'Publish Violation - User "CN=veh-2' in log
    assert 'Subscription Violation - User "CN=veh-2' in log


async def test_the_nats_port_refuses_vehicle_names_and_foreign_certificates(
    nats_cluster: NatsCluster, tmp_path
) -> None:
    host_port = nats_cluster.nats_urls[0].rsplit("@", 1)[1]
    intruder = NatsClient()
    with pytest.raises((NoServersError, nats.errors.Error, OSError)):
        await intruder.connect(
            f"nats://{host_port}",
            user=certificate_user("veh-1", "edge-agent development"),
            password="",
            allow_reconnect=False,
            connect_timeout=3,
            max_reconnect_attempts=0,
        )
    await intruder.close()  # nats-py leaves the refused socket open otherwise
    other = DevCA.create(tmp_path / "other", name="other CA")
    forged = other.issue_client(tmp_path / "other", "veh-1")
    context = ssl.create_default_context(cafile=str(nats_cluster.pki.ca_file))
    context.load_cert_chain(str(forged.cert_file), str(forged.key_file))
    host, port = nats_cluster.mqtt_addresses[0]
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            host,
            port,
            identifier="veh-1",
            tls_context=context,
            protocol=aiomqtt.ProtocolVersion.V311,
            timeout=5,
        ):
            pass
