"""Signal catalogues end to end against a real mosquitto: the agent's telemetry module writes
v2 until the cloud stand-in acknowledged its catalogue, v3 after; the stand-in holds v3
batches whose catalogue it lacks (never drops them) and fetches the retained catalogue."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from edge_agent.bus import OverflowPolicy
from edge_agent.can.types import DecodedMessage
from edge_agent.modules.telemetry.batch import (
    ClockQuality,
    Sample,
    ValueType,
    build_batch,
    decode_batch,
    encode_batch,
)
from edge_agent.modules.telemetry.batch.catalogue import Catalogue, CatalogueEntry
from edge_agent.simulator.cloud_store import CloudStore
from edge_agent.simulator.rig.broker import LocalBroker
from fixtures.cloud import (
    Pki,
    link_config,
    link_state,
    needs_mosquitto,
    running_agent,
    running_consumer,
)
from fixtures.waiting import wait_until

pytestmark = needs_mosquitto

CATALOGUE = Catalogue.of(
    [
        CatalogueEntry("VehicleSpeed", ValueType.FLOAT, "km/h", 0.01, 0.0),
        CatalogueEntry("Gear", ValueType.INT),
    ]
)


def v3_batch(sequence: int) -> bytes:
    samples = [
        Sample("VehicleSpeed", 100.0 + i * 0.01, 1_760_000_000.0 + i * 0.01, 50.0 + i * 0.01)
        for i in range(40)
    ] + [Sample("Gear", 100.0, 1_760_000_000.0, 3)]
    batch = build_batch(
        samples, vehicle_id="veh-1", stream="chassis", sequence=sequence, clock=ClockQuality.TRUSTED
    )
    return encode_batch(batch, catalogue=CATALOGUE)


async def test_batches_wait_for_their_catalogue_and_the_vehicle_gets_an_ack(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    store = CloudStore(tmp_path / "cloud.db")
    async with (
        running_consumer(store, pki, broker.port, "cloud-main") as stats,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", broker.port)
        ) as supervisor,
    ):
        await wait_until(
            lambda: link_state(supervisor) == "online",
            timeout=10,
            what='lambda: link_state(supervisor) == "online"',
        )
        acks = supervisor.bus.subscribe(
            "cloud/in/catalog/+/ack", maxsize=10, overflow=OverflowPolicy.DROP_OLDEST
        )
        await wait_until(
            lambda: bool(supervisor.runners), timeout=5, what="lambda: bool(supervisor.runners)"
        )
        for sequence in range(3):
            await supervisor.bus.publish("cloud/out/telemetry/chassis", v3_batch(sequence))
        # The store is polled through the consumer's outcomes: its SQLite connection is
        # the consumer thread's while it runs.
        await wait_until(
            lambda: stats.outcomes.get("held", 0) == 3, timeout=10, what="batches held"
        )

        # A document slipped under another hash is refused, and the vehicle hears so.
        await supervisor.bus.publish(f"cloud/out/catalog/{'0' * 32}", CATALOGUE.document)
        refusal = await asyncio.wait_for(acks.get(), 10)
        assert refusal.topic == f"cloud/in/catalog/{'0' * 32}/ack"
        assert b'"accepted": false' in refusal.payload
        assert b"hashes to" in refusal.payload

        await supervisor.bus.publish(f"cloud/out/catalog/{CATALOGUE.hash_hex}", CATALOGUE.document)
        ack = await asyncio.wait_for(acks.get(), 10)
        assert ack.topic == f"cloud/in/catalog/{CATALOGUE.hash_hex}/ack"
        assert ack.payload == b'{"accepted":true}'
        await wait_until(
            lambda: stats.outcomes.get("catalogue", 0) == 1, timeout=10, what="catalogue kept"
        )
    summary = store.summary()["veh-1"]
    store.close()
    assert summary["held"] == 0
    assert summary["samples"] == 3 * 41
    assert summary["catalogues"] == 1
    assert summary["rejected"] == 1


async def test_a_back_end_that_starts_later_gets_the_retained_catalogue(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    async with running_agent(
        tmp_path / "agent", "veh-1", link_config(pki, "veh-1", broker.port)
    ) as supervisor:
        await wait_until(
            lambda: link_state(supervisor) == "online",
            timeout=10,
            what='lambda: link_state(supervisor) == "online"',
        )
        acks = supervisor.bus.subscribe(
            "cloud/in/catalog/+/ack", maxsize=10, overflow=OverflowPolicy.DROP_OLDEST
        )
        await supervisor.bus.publish(f"cloud/out/catalog/{CATALOGUE.hash_hex}", CATALOGUE.document)
        await wait_until(
            lambda: supervisor.runners["cloud-link"].module.uplink.counters.published > 0,
            timeout=10,
            what='lambda: supervisor.runners["cloud-link"].module.uplink.count',
        )
        store = CloudStore(tmp_path / "cloud.db")
        async with running_consumer(store, pki, broker.port, "cloud-late") as stats:
            await wait_until(
                lambda: stats.outcomes.get("catalogue") == 1, timeout=10, what="retained catalogue"
            )
            ack = await asyncio.wait_for(acks.get(), 10)
        summary = store.summary()["veh-1"]
        store.close()
    assert ack.topic == f"cloud/in/catalog/{CATALOGUE.hash_hex}/ack"
    assert summary["catalogues"] == 1


TELEMETRY = {
    "streams": [{"name": "chassis", "signals": [{"signal": "VehicleSpeed"}, {"signal": "Gear"}]}],
    "batch_max_samples": 20,
}


async def test_the_agent_writes_v2_until_acknowledged_then_v3(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    store = CloudStore(tmp_path / "cloud.db")
    async with (
        running_consumer(store, pki, broker.port, "cloud-main"),
        running_agent(
            tmp_path / "agent",
            "veh-1",
            link_config(pki, "veh-1", broker.port),
            extra_modules={"telemetry": {"config": TELEMETRY}},
        ) as supervisor,
    ):
        await wait_until(
            lambda: link_state(supervisor) == "online",
            timeout=10,
            what='lambda: link_state(supervisor) == "online"',
        )
        telemetry = supervisor.runners["telemetry"].module

        async def drive(count: int) -> None:
            for index in range(count):
                now = time.time()
                await supervisor.bus.publish(
                    "can/vcan0/decoded/Chassis",
                    DecodedMessage(
                        "vcan0",
                        "Chassis",
                        0x100,
                        now,
                        time.monotonic(),
                        {"VehicleSpeed": 50.0 + index * 0.01, "Gear": 3},
                    ),
                )

        await drive(10)  # one batch: the catalogue is new, so this one goes as v2
        shelf = telemetry._shelf
        await wait_until(
            lambda: shelf.writing is not None, timeout=10, what="catalogue acknowledged"
        )
        await drive(10)
        await wait_until(
            lambda: telemetry.counters["batches"] == 2, timeout=10, what="two batches spooled"
        )
        spool = supervisor.runners["cloud-link"].module.spool

        async def drained() -> bool:
            return (await spool.stats()).records == 0

        # A record leaves the spool at PUBACK, which the stand-in sends after its commit.
        await wait_until(drained, timeout=10, what="spool drained", poll_s=0.01)
        writing = shelf.writing
    payloads = [
        bytes(row[0])
        for row in store._db.execute(
            "SELECT payload FROM messages WHERE suffix = 'telemetry/chassis' ORDER BY rowid"
        )
    ]
    store.close()
    assert writing is not None
    catalogues = {writing.hash: writing}
    assert payloads[0][4] in (1, 2)  # before the ack: v1/v2, which any back end reads
    assert payloads[1][4] == 3
    decoded = [decode_batch(payload, catalogues=catalogues) for payload in payloads]
    assert [b.sample_count for b in decoded] == [20, 20]
    assert decoded[1].catalogue == next(iter(catalogues))


def summary_of(store: CloudStore) -> dict[str, Any]:
    """The store's summary of veh-1 (empty before anything arrived)."""
    summary: dict[str, Any] = store.summary().get("veh-1", {"held": -1})
    return summary


async def test_a_back_end_without_the_catalogue_asks_the_vehicle_for_it(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    """The vehicle writes v3 with a catalogue the broker never saw (acknowledged by a back end
    whose database is gone): the back end holds the batches, asks for the catalogue by
    hash, the vehicle publishes it again, and the batches decode."""
    store = CloudStore(tmp_path / "cloud.db")
    async with (
        running_consumer(store, pki, broker.port, "cloud-restored") as stats,
        running_agent(
            tmp_path / "agent",
            "veh-1",
            link_config(pki, "veh-1", broker.port),
            extra_modules={"telemetry": {"config": TELEMETRY}},
        ) as supervisor,
    ):
        await wait_until(lambda: link_state(supervisor) == "online", timeout=10, what="link online")
        telemetry = supervisor.runners["telemetry"].module
        shelf = telemetry._shelf
        columns = build_batch(
            [Sample("VehicleSpeed", 1.0, 1.0, 50.0), Sample("Gear", 1.0, 1.0, 3)],
            vehicle_id="veh-1",
            stream="chassis",
            sequence=0,
            clock=ClockQuality.TRUSTED,
        ).signals
        async with telemetry._shelf_lock:  # as if acknowledged long ago: never republished
            learned = await asyncio.to_thread(shelf.learn, columns, {}, {})
            assert learned is not None
            await asyncio.to_thread(shelf.acknowledge, learned.hash)
        # An attacker's request for a hash the vehicle never made: counted, not answered.
        await supervisor.bus.publish(f"cloud/in/catalog/{'ab' * 16}/request", b"../../etc")
        for index in range(20):
            await supervisor.bus.publish(
                "can/vcan0/decoded/Chassis",
                DecodedMessage(
                    "vcan0",
                    "Chassis",
                    0x100,
                    time.time(),
                    time.monotonic(),
                    {"VehicleSpeed": 50.0 + index * 0.01, "Gear": 3},
                ),
            )
        counts = telemetry._limiter.counts
        # At least once: a link that reconnects under load publishes it again (the store
        # keeps one per hash, checked below).
        await wait_until(
            lambda: stats.outcomes.get("catalogue", 0) >= 1 and summary_of(store)["held"] == 0,
            timeout=30,
            what="the catalogue asked for and the held batches decoded",
            details=lambda: (stats.outcomes, counts),
        )
    summary = store.summary()["veh-1"]
    store.close()
    assert stats.outcomes.get("held") == 2  # both batches waited for it, none was dropped
    assert summary["held"] == 0
    assert summary["samples"] == 40
    assert summary["catalogues"] == 1
    assert counts["answered"] == 1
    assert counts["unknown"] == 1
