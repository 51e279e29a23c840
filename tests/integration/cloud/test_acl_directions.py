"""The direction-split fleet ACL (deploy/mosquitto/acl) against a real mosquitto with mutual TLS.

A vehicle publishes only upstream suffixes and reads only downstream ones, under its own
``vehicles/{id}/``; the back end (``cloud``) the reverse. So a vehicle cannot plant its own
retained desired state or OTA job, and cannot read another vehicle's traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from edge_agent.modules.cloud_link.client import LinkClient, PublishRefused, tls_context
from edge_agent.modules.cloud_link.config import CloudLinkConfig
from edge_agent.simulator.rig.broker import DOWNSTREAM, FLEET_ACL, UPSTREAM, LocalBroker
from fixtures.cloud import Pki, link_config, needs_mosquitto
from fixtures.waiting import wait_until

pytestmark = needs_mosquitto
ROOT = Path(__file__).resolve().parents[3]


def _concrete(suffix: str) -> str:
    return suffix.replace("+", "x1").replace("#", "s1")


def test_the_shipped_acl_file_is_the_one_tested() -> None:
    lines = (ROOT / "deploy/mosquitto/acl").read_text().splitlines()
    rules = [line for line in lines if line.strip() and not line.startswith("#")]
    assert rules == [line for line in FLEET_ACL if line]


def _client(pki: Pki, port: int, identity: str) -> LinkClient:
    config = CloudLinkConfig.model_validate(link_config(pki, identity, port))
    assert config.tls is not False
    return LinkClient(config, identity, tls_context(config.tls), last_will=False)


@contextlib.asynccontextmanager
async def _collecting(client: LinkClient, into: list[aiomqtt.Message]) -> AsyncIterator[None]:
    async def collect() -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in client.messages:
                into.append(message)

    task = asyncio.create_task(collect())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_vehicle_cannot_write_its_own_downstream_topics_nor_plant_retained_ones(
    pki: Pki, broker: LocalBroker
) -> None:
    async with _client(pki, broker.port, "veh-a") as vehicle:
        for suffix in DOWNSTREAM:
            topic = f"vehicles/veh-a/{_concrete(suffix)}"
            with pytest.raises(PublishRefused, match="Not authorized"):
                await vehicle.publish_acked(topic, b'{"planted": true}', retain=True)
        for suffix in UPSTREAM:  # its own upstream topics are fine
            await vehicle.publish_acked(f"vehicles/veh-a/{_concrete(suffix)}", b"{}")
    # A fresh session reads its downstream topics: no retained plant arrives before the
    # back end's marker command (retained messages come first, on subscribe).
    got: list[aiomqtt.Message] = []
    async with (
        _client(pki, broker.port, "veh-a") as vehicle,
        _client(pki, broker.port, "cloud") as cloud,
        _collecting(vehicle, got),
    ):
        await vehicle.subscribe([(f"vehicles/veh-a/{_concrete(s)}", 1) for s in DOWNSTREAM])
        await vehicle.subscribe("vehicles/veh-a/commands/marker", qos=1)
        await cloud.publish_acked("vehicles/veh-a/commands/marker", b"{}")
        await wait_until(lambda: got, timeout=5, what="the marker")
    assert [str(m.topic) for m in got] == ["vehicles/veh-a/commands/marker"]


async def test_the_cloud_cannot_write_upstream_topics(pki: Pki, broker: LocalBroker) -> None:
    async with _client(pki, broker.port, "cloud") as cloud:
        for suffix in UPSTREAM:
            with pytest.raises(PublishRefused, match="Not authorized"):
                await cloud.publish_acked(f"vehicles/veh-a/{_concrete(suffix)}", b"{}")
        for suffix in DOWNSTREAM:
            await cloud.publish_acked(f"vehicles/veh-a/{_concrete(suffix)}", b"{}")


async def test_directions_and_vehicles_stay_apart_on_delivery(
    pki: Pki, broker: LocalBroker
) -> None:
    to_a: list[aiomqtt.Message] = []
    to_b: list[aiomqtt.Message] = []
    to_cloud: list[aiomqtt.Message] = []
    async with (
        _client(pki, broker.port, "veh-a") as vehicle_a,
        _client(pki, broker.port, "veh-b") as vehicle_b,
        _client(pki, broker.port, "cloud") as cloud,
        _collecting(vehicle_a, to_a),
        _collecting(vehicle_b, to_b),
        _collecting(cloud, to_cloud),
    ):
        # mosquitto grants wildcard subscriptions and checks "read" per message.
        await vehicle_a.subscribe("vehicles/#", qos=1)
        await vehicle_b.subscribe("vehicles/veh-b/#", qos=1)
        await cloud.subscribe("vehicles/#", qos=1)
        await cloud.publish_acked("vehicles/veh-b/commands/ping", b"for b")
        await cloud.publish_acked("vehicles/veh-a/commands/ping", b"for a")
        await vehicle_b.publish_acked("vehicles/veh-b/events", b"from b")
        await vehicle_b.publish_acked("vehicles/veh-b/commands/ping/reply", b"reply b")
        await wait_until(lambda: to_a and to_b and len(to_cloud) >= 2, timeout=5, what="deliveries")
        await vehicle_a.publish_acked("vehicles/veh-a/events", b"last")
        await wait_until(
            lambda: any(m.payload == b"last" for m in to_cloud), timeout=5, what="the last event"
        )
    assert [(str(m.topic), m.payload) for m in to_a] == [("vehicles/veh-a/commands/ping", b"for a")]
    assert [(str(m.topic), m.payload) for m in to_b] == [("vehicles/veh-b/commands/ping", b"for b")]
    assert [str(m.topic) for m in to_cloud] == [
        "vehicles/veh-b/events",
        "vehicles/veh-b/commands/ping/reply",
        "vehicles/veh-a/events",
    ]


def test_the_shipped_broker_configs_limit_the_packet_size() -> None:
    for name in ("fleet.conf", "mosquitto.conf"):
        lines = (ROOT / "deploy/mosquitto" / name).read_text().splitlines()
        assert "max_packet_size 1048576" in lines, name


async def test_the_broker_disconnects_a_sender_of_an_oversize_packet(
    pki: Pki, tmp_path: Path
) -> None:
    broker = LocalBroker(tmp_path / "limited", tls=pki.broker_tls(), max_packet_size=64 * 1024)
    broker.start()
    small_sent = refused = False
    try:
        async with _client(pki, broker.port, "cloud") as cloud:
            await cloud.publish_acked("vehicles/veh-a/commands/ping", b"x" * 1000)
            small_sent = True
            with pytest.raises(aiomqtt.MqttError):
                await cloud.publish_acked("vehicles/veh-a/commands/ping", b"x" * 100_000)
            refused = True
    except aiomqtt.MqttError:
        pass  # leaving a connection the broker already closed may fail too
    finally:
        broker.stop()
    assert small_sent
    assert refused
