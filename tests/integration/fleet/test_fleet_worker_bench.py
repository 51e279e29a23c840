"""``edge-agent bench fleet-worker`` runs end to end: every queued batch drained, once."""

from __future__ import annotations

import asyncio

import pytest

from edge_agent.fleet.cluster import nats_server_binary
from edge_agent.fleet.worker_bench import measure
from fixtures.real_parts import missing


@pytest.mark.slow
def test_the_bench_drains_every_queued_batch_once(fleet_database: str, tmp_path) -> None:
    del fleet_database  # asked for its check that PostgreSQL is there (skip or CI failure)
    if nats_server_binary() is None:
        missing("nats-server is not installed (scripts/system-deps nats-server)")
    result = asyncio.run(measure(40, tmp_path))
    assert result["batches_per_phase"] == 40
    # Phase 1 also drains the 40 batches of the one-connection ingest.
    assert (result["drain_1_worker_batches"], result["drain_2_worker_batches"]) == (80, 40)
    assert result["duplicate_rows_1_worker"] == result["duplicate_rows_2_worker"] == 0
    for key in ("ingest_1_connection_per_s", "drain_2_worker_per_s", "baseline_sqlite_per_s"):
        assert result[key] > 0
