"""The cloud stand-in's store and catalogues (real SQLite, no broker): hold, release, refuse."""

from __future__ import annotations

import json
from pathlib import Path

from edge_agent.modules.telemetry.batch import (
    Catalogue,
    CatalogueEntry,
    ClockQuality,
    Sample,
    ValueType,
    build_batch,
    encode_batch,
)
from edge_agent.simulator.cloud_store import CloudStore, Incoming

ENTRIES = [CatalogueEntry("Speed", ValueType.FLOAT, "km/h", 0.01, 0.0)]


def v3_batch(catalogue: Catalogue, sequence: int) -> bytes:
    samples = [Sample("Speed", 1 + i * 0.01, 1.76e9 + i * 0.01, 50 + i * 0.01) for i in range(30)]
    batch = build_batch(
        samples, vehicle_id="veh-1", stream="chassis", sequence=sequence, clock=ClockQuality.TRUSTED
    )
    return encode_batch(batch, catalogue=catalogue)


def test_held_batches_are_kept_across_a_restart_and_released_by_their_catalogue(
    tmp_path: Path,
) -> None:
    catalogue = Catalogue.of(ENTRIES, vehicle="veh-1")
    store = CloudStore(tmp_path / "cloud.db")
    batch = Incoming("vehicles/veh-1/telemetry/chassis", v3_batch(catalogue, 1), None)
    assert store.ingest_many([batch]) == ["held"]
    assert store.wanted == {("veh-1", catalogue.hash_hex)}
    store.close()
    store = CloudStore(tmp_path / "cloud.db")  # a restart: the held batch is still there
    assert store.summary()["veh-1"]["held"] == 1
    topic = f"vehicles/veh-1/catalog/{catalogue.hash_hex}"
    assert store.ingest_many([Incoming(topic, catalogue.document, None)]) == ["catalogue"]
    assert store.acks == [(f"{topic}/ack", b'{"accepted":true}')]
    summary = store.summary()["veh-1"]
    assert (summary["held"], summary["batches"], summary["samples"]) == (0, 1, 30)
    store.close()
    again = CloudStore(tmp_path / "cloud.db")  # catalogues survive a restart too
    follow_up = Incoming("vehicles/veh-1/telemetry/chassis", v3_batch(catalogue, 2), None)
    assert again.ingest_many([follow_up]) == ["stored"]
    again.close()


def test_a_catalogue_for_another_vehicle_is_refused_with_a_reason(tmp_path: Path) -> None:
    foreign = Catalogue.of(ENTRIES, vehicle="veh-2")
    store = CloudStore(tmp_path / "cloud.db")
    topic = f"vehicles/veh-1/catalog/{foreign.hash_hex}"
    assert store.ingest_many([Incoming(topic, foreign.document, None)]) == ["rejected"]
    (ack_topic, payload), *_ = store.acks
    answer = json.loads(payload)
    assert ack_topic == f"{topic}/ack"
    assert answer["accepted"] is False
    assert "veh-2" in answer["reason"]
    store.close()
