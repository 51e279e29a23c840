"""Vehicles to PostgreSQL through a 3-node NATS cluster: rows land once, poison is parked."""

from __future__ import annotations

import asyncio

import asyncpg
import nats
import pytest
from nats.js.errors import ServiceUnavailableError

from edge_agent.fleet.cluster import NatsCluster
from edge_agent.fleet.store import counts, ensure_schema, write_outcome
from edge_agent.fleet.streams import CONSUMER, MESSAGES_STREAM, StreamLimits, ensure_streams
from edge_agent.modules.telemetry.batch import (
    ClockQuality,
    Sample,
    ValueType,
    build_batch,
    encode_batch,
    encode_samples,
)
from edge_agent.modules.telemetry.batch.catalogue import Catalogue, CatalogueEntry
from fixtures.fleet import batch_for, mqtt_client, rows, running_worker, wait_for_rows
from fixtures.waiting import wait_until


async def test_batches_events_and_status_land_once(
    nats_cluster: NatsCluster, fleet_dsn: str
) -> None:
    async with running_worker(nats_cluster, fleet_dsn) as worker:
        async with mqtt_client(nats_cluster, "veh-1", node=1) as vehicle:
            sent = [batch_for("veh-1", sequence) for sequence in range(1, 21)]
            for batch in sent:
                await vehicle.publish("vehicles/veh-1/telemetry/chassis", batch, qos=1)
            # A re-send after a lost PUBACK: the same batch again, as a new message.
            await vehicle.publish("vehicles/veh-1/telemetry/chassis", sent[4], qos=1)
            await vehicle.publish("vehicles/veh-1/events", b'{"kind": "aeb", "seq": 1}', qos=1)
            await vehicle.publish("vehicles/veh-1/events", b'{"kind": "aeb", "seq": 1}', qos=1)
            for state in (b'{"state": "online"}', b'{"state": "offline"}', b'{"state": "online"}'):
                await vehicle.publish("vehicles/veh-1/status", state, qos=1, retain=True)
        await wait_until(
            lambda: worker.stats.outcomes.get("duplicate", 0) >= 2,
            timeout=30,
            what="both repeats seen by the worker",
            details=lambda: worker.stats,
        )
    found = await counts(fleet_dsn)
    assert found["batches"] == 20
    assert found["samples"] == 80
    assert found["events"] == 1
    assert found["duplicate_rows"] == 0
    assert found["parked"] == 0
    sequences = [r[0] for r in await rows(fleet_dsn, "SELECT sequence FROM batches ORDER BY 1")]
    assert sequences == list(range(1, 21))
    status = await rows(fleet_dsn, "SELECT status FROM vehicles WHERE vehicle = 'veh-1'")
    assert status[0][0] == '{"state": "online"}'
    latency = await rows(fleet_dsn, "SELECT count(*) FROM batches WHERE written_at >= stored_at")
    assert latency[0][0] == 20


CATALOGUE = Catalogue.of(
    [
        CatalogueEntry("VehicleSpeed", ValueType.FLOAT, "km/h", 0.01, 0.0),
        CatalogueEntry("Gear", ValueType.INT),
    ]
)


def v3_batch(vehicle: str, sequence: int) -> bytes:
    samples = [
        Sample("VehicleSpeed", 100.0 + i * 0.01, 1_760_000_000.0 + i * 0.01, 50.0 + i)
        for i in range(10)
    ] + [Sample("Gear", 100.0, 1_760_000_000.0, 3)]
    batch = build_batch(
        samples, vehicle_id=vehicle, stream="chassis", sequence=sequence, clock=ClockQuality.TRUSTED
    )
    return encode_batch(batch, catalogue=CATALOGUE)


async def test_poison_is_parked_with_its_reason_and_unknown_catalogues_wait(
    nats_cluster: NatsCluster, fleet_dsn: str
) -> None:
    acks: list[str] = []
    nul_named = encode_samples(
        [Sample("bad\x00name", 1.0, 1.7e9, 1.0)],
        vehicle_id="veh-1",
        stream="chassis",
        sequence=99,
        clock=ClockQuality.TRUSTED,
    )
    async with running_worker(nats_cluster, fleet_dsn) as worker:
        async with mqtt_client(nats_cluster, "veh-1", node=2) as vehicle:
            await vehicle.subscribe("vehicles/veh-1/catalog/+/ack", qos=1)
            topic = "vehicles/veh-1/telemetry/chassis"
            await vehicle.publish(topic, b"\x28\xb5\x2f\xfd garbage, not a batch", qos=1)
            await vehicle.publish(topic, batch_for("veh-2", 1), qos=1)  # names another vehicle
            await vehicle.publish(topic, nul_named, qos=1)  # decodes; PostgreSQL refuses it
            await vehicle.publish(topic, v3_batch("veh-1", 7), qos=1)  # catalogue not known yet
            await vehicle.publish(topic, v3_batch("veh-1", 8), qos=1)
            await vehicle.publish("vehicles/veh-1/catalog/" + "0" * 32, CATALOGUE.document, qos=1)
            await wait_for_rows(fleet_dsn, "SELECT count(*) FROM held", 2)
            await wait_for_rows(fleet_dsn, "SELECT count(*) FROM parked", 4)
            assert (await counts(fleet_dsn))["batches"] == 0
            # The catalogue arrives: the held batches are decoded, and the vehicle told.
            await vehicle.publish(
                f"vehicles/veh-1/catalog/{CATALOGUE.hash_hex}", CATALOGUE.document, qos=1
            )
            await wait_for_rows(fleet_dsn, "SELECT count(*) FROM batches", 2)

            async def first_ack() -> None:
                async for message in vehicle.messages:
                    acks.append(str(message.topic))
                    return

            await asyncio.wait_for(first_ack(), 20)
        assert worker.stats.outcomes.get("held") == 2
    reasons = sorted(r[0] for r in await rows(fleet_dsn, "SELECT reason FROM parked"))
    assert len(reasons) == 4
    assert any(reason.startswith("database refused it: 22021") for reason in reasons), reasons
    assert any(reason.startswith("batch does not decode") for reason in reasons), reasons
    assert "batch names vehicle 'veh-2'" in reasons, reasons
    assert any(reason.startswith("catalogue refused") for reason in reasons), reasons
    found = await counts(fleet_dsn)
    assert (found["held"], found["batches"], found["samples"], found["duplicate_rows"]) == (
        0,
        2,
        22,
        0,
    )
    sequences = [r[0] for r in await rows(fleet_dsn, "SELECT sequence FROM batches ORDER BY 1")]
    assert sequences == [7, 8]
    assert acks == [f"vehicles/veh-1/catalog/{CATALOGUE.hash_hex}/ack"]


async def test_a_redelivery_after_the_commit_writes_nothing_twice(
    nats_cluster: NatsCluster, fleet_dsn: str
) -> None:
    nc = await nats.connect(nats_cluster.nats_urls)
    try:
        await ensure_streams(nc)
        await ensure_schema(fleet_dsn)
        async with mqtt_client(nats_cluster, "veh-3") as vehicle:
            for sequence in range(1, 11):
                await vehicle.publish(
                    "vehicles/veh-3/telemetry/chassis", batch_for("veh-3", sequence), qos=1
                )
        # A worker that commits but whose ack never arrives: JetStream hands the messages on.
        subscription = await nc.jetstream().pull_subscribe_bind(CONSUMER, MESSAGES_STREAM)
        fetched = await subscription.fetch(10, timeout=10)
        assert len(fetched) == 10
        connection = await asyncpg.connect(fleet_dsn)
        try:
            async with connection.transaction():
                for message in fetched:
                    await write_outcome(
                        connection,
                        message.subject,
                        message.data,
                        message.metadata.timestamp,
                        {},
                        deliveries=1,
                    )
        finally:
            await connection.close()
        for message in fetched:
            await message.nak()
        await subscription.unsubscribe()
    finally:
        await nc.close()
    async with running_worker(nats_cluster, fleet_dsn, name="w2") as worker:
        await wait_until(
            lambda: worker.stats.redeliveries >= 10,
            timeout=30,
            what="the ten redeliveries handled",
            details=lambda: worker.stats,
        )
    assert worker.stats.outcomes == {"duplicate": 10}
    found = await counts(fleet_dsn)
    assert (found["batches"], found["samples"], found["duplicate_rows"]) == (10, 40, 0)


async def test_a_message_on_its_last_delivery_is_parked_not_retried_forever(
    nats_cluster: NatsCluster, fleet_dsn: str
) -> None:
    nc = await nats.connect(nats_cluster.nats_urls)
    try:
        await ensure_streams(nc, StreamLimits(max_deliver=3))
        async with mqtt_client(nats_cluster, "veh-1") as vehicle:
            await vehicle.publish("vehicles/veh-1/events", b'{"stubborn": true}', qos=1)
        # Two workers took it and died before acknowledging (as a poison pill would make them).
        subscription = await nc.jetstream().pull_subscribe_bind(CONSUMER, MESSAGES_STREAM)
        for delivery in (1, 2):
            (message,) = await subscription.fetch(1, timeout=10)
            assert message.metadata.num_delivered == delivery
            await message.nak()
        await subscription.unsubscribe()
    finally:
        await nc.close()
    async with running_worker(nats_cluster, fleet_dsn) as worker:
        await wait_for_rows(fleet_dsn, "SELECT count(*) FROM parked", 1)
    assert worker.stats.outcomes == {"parked": 1}
    (parked,) = await rows(fleet_dsn, "SELECT reason, deliveries, payload FROM parked")
    assert parked["reason"].startswith("delivered 3 times without an acknowledgement")
    assert (parked["deliveries"], bytes(parked["payload"])) == (3, b'{"stubborn": true}')
    assert (await counts(fleet_dsn))["events"] == 0


async def test_stream_setup_waits_for_a_cluster_that_lost_its_quorum(
    nats_cluster: NatsCluster,
) -> None:
    """Two of three nodes down: setup gives up at its deadline, or succeeds once they return."""
    await nats_cluster.kill(1)
    await nats_cluster.kill(2)
    nc = await nats.connect(nats_cluster.nats_urls[0])
    try:
        with pytest.raises((nats.errors.TimeoutError, ServiceUnavailableError)):
            await ensure_streams(nc, deadline_s=2.0, api_timeout_s=1.0)
        retried: list[BaseException] = []
        setup = asyncio.create_task(ensure_streams(nc, on_retry=retried.append, api_timeout_s=2.0))
        await wait_until(lambda: bool(retried), timeout=60, what="a retried setup request")
        assert not setup.done()
        await nats_cluster.restart(1)
        await nats_cluster.restart(2)
        await asyncio.wait_for(setup, 120)
        info = await nc.jetstream().stream_info(MESSAGES_STREAM)
        assert info.config.num_replicas == 3
        consumer = await nc.jetstream().consumer_info(MESSAGES_STREAM, CONSUMER)
        assert consumer.config.durable_name == CONSUMER
    finally:
        await nc.close()
