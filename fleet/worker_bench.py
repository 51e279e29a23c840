"""``edge-agent bench fleet-worker``: what the fleet pipeline's parts take, one at a time.

A three-node NATS cluster on loopback (edge_agent.fleet.cluster) and a scratch database on
the local PostgreSQL (``EDGE_AGENT_FLEET_PG``, default ``postgresql://postgres@127.0.0.1/
postgres``). Measured in one run:

* ingest: real telemetry batches (40 samples) published with QoS 1 over MQTT 3.1.1 and
  mutual TLS, each publish waiting for its PUBACK (stored in the R3 stream), from one
  connection and from ten at once;
* drain: the queued batches written by 1 worker, then (a fresh queue) by 2 workers;
* baseline: the same batches into the embedded SQLite stand-in (``CloudStore``, the same
  decoder, 200 per transaction), in this process.

``ratio_*`` is the drain rate over the baseline. ``--messages`` batches per phase (default
2000). The machine's load average is reported: figures from a loaded machine say so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
import nats

from edge_agent.bench.report import machine
from edge_agent.cli.exit_codes import UserError
from edge_agent.fleet.cluster import ClusterError, NatsCluster, nats_server_binary
from edge_agent.fleet.store import counts
from edge_agent.fleet.streams import ensure_streams, pending
from edge_agent.fleet.worker import FleetWorker
from edge_agent.logs import configure_logging
from edge_agent.modules.telemetry.batch import ClockQuality, Sample, encode_samples

VEHICLES = [f"bench-{number}" for number in range(10)]
SAMPLES = 40
ADMIN_DSN = os.environ.get("EDGE_AGENT_FLEET_PG", "postgresql://postgres@127.0.0.1/postgres")


def _batches(vehicle: str, count: int, first: int) -> list[bytes]:
    now = time.time()
    return [
        encode_samples(
            [Sample("VehicleSpeed", i * 0.1, now + i * 0.1, 50.0 + i) for i in range(SAMPLES)],
            vehicle_id=vehicle,
            stream="chassis",
            sequence=first + number,
            clock=ClockQuality.TRUSTED,
        )
        for number in range(count)
    ]


async def _publish(cluster: NatsCluster, batches: dict[str, list[bytes]]) -> float:
    """Publish every vehicle's batches (one connection each, at once); returns batches/s."""

    async def one(index: int, vehicle: str) -> None:
        issued = cluster.client_tls(vehicle)
        context = ssl.create_default_context(cafile=str(cluster.pki.ca_file))
        context.load_cert_chain(str(issued.cert_file), str(issued.key_file))
        host, port = cluster.mqtt_addresses[index % len(cluster.mqtt_addresses)]
        async with aiomqtt.Client(
            host,
            port,
            identifier=vehicle,
            tls_context=context,
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,
            timeout=30,
        ) as client:
            for batch in batches[vehicle]:
                await client.publish(f"vehicles/{vehicle}/telemetry/chassis", batch, qos=1)

    started = time.perf_counter()
    await asyncio.gather(*(one(index, vehicle) for index, vehicle in enumerate(batches)))
    return sum(len(b) for b in batches.values()) / (time.perf_counter() - started)


async def _drain(cluster: NatsCluster, dsn: str, workers: int, total: int) -> float:
    """Start ``workers`` workers on a full queue; batches/s until ``total`` are written."""
    running = [FleetWorker(cluster.nats_urls, dsn, name=f"bench-{n}") for n in range(workers)]
    started = time.perf_counter()
    tasks = [asyncio.create_task(w.run(), name=f"bench worker {w.name}") for w in running]
    try:
        while sum(w.stats.outcomes.get("stored", 0) for w in running) < total:
            if any(task.done() for task in tasks):
                for task in tasks:
                    if task.done():
                        task.result()  # a worker that ended early says why
            await asyncio.sleep(0.05)
        return total / (time.perf_counter() - started)
    finally:
        for worker in running:
            worker.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


def _sqlite_baseline(batches: list[bytes], directory: Path) -> float:
    from edge_agent.simulator.cloud_store import CloudStore, Incoming

    store = CloudStore(directory / "baseline.db")
    incoming = [Incoming(f"vehicles/{VEHICLES[0]}/telemetry/chassis", b, None) for b in batches]
    started = time.perf_counter()
    try:
        for start in range(0, len(incoming), 200):
            store.ingest_many(incoming[start : start + 200])
    finally:
        store.close()
    return len(incoming) / (time.perf_counter() - started)


async def _scratch_database(name: str, *, drop: bool = False) -> str:
    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if not drop:
            await connection.execute(f"CREATE DATABASE {name}")
    finally:
        await connection.close()
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


async def measure(per_phase: int, directory: Path) -> dict[str, Any]:
    """Ingest, drain with 1 and 2 workers, and the SQLite baseline (module docstring)."""
    per_vehicle = max(1, per_phase // len(VEHICLES))
    total = per_vehicle * len(VEHICLES)
    result: dict[str, Any] = {"batches_per_phase": total, "samples_per_batch": SAMPLES}
    names = [f"edge_fleet_bench_{secrets.token_hex(3)}_{n}" for n in (1, 2)]
    async with NatsCluster(directory / "nats", vehicles=VEHICLES) as cluster:
        nc = await nats.connect(cluster.nats_urls)
        try:
            await ensure_streams(nc)
            one = {VEHICLES[0]: _batches(VEHICLES[0], min(total, 300), 0)}
            result["ingest_1_connection_per_s"] = round(await _publish(cluster, one))
            for workers, name in zip((1, 2), names, strict=True):
                first = 1000 + workers * per_vehicle
                fleet = {vehicle: _batches(vehicle, per_vehicle, first) for vehicle in VEHICLES}
                ingest = await _publish(cluster, fleet)
                if workers == 1:
                    result["ingest_10_connections_per_s"] = round(ingest)
                    everything = [batch for batches in fleet.values() for batch in batches]
                    result["baseline_sqlite_per_s"] = round(
                        await asyncio.to_thread(_sqlite_baseline, everything, directory)
                    )
                queued, _ = await pending(nc)
                dsn = await _scratch_database(name)
                rate = await _drain(cluster, dsn, workers, queued)
                found = await counts(dsn)
                result[f"drain_{workers}_worker_per_s"] = round(rate)
                result[f"drain_{workers}_worker_batches"] = queued
                result[f"duplicate_rows_{workers}_worker"] = found["duplicate_rows"]
        finally:
            await nc.close()
            for name in names:
                await _scratch_database(name, drop=True)
    baseline = result["baseline_sqlite_per_s"] or 1
    result["ratio_1_worker"] = round(result["drain_1_worker_per_s"] / baseline, 2)
    result["ratio_2_workers"] = round(result["drain_2_worker_per_s"] / baseline, 2)
    result["load_average"] = [round(value, 2) for value in os.getloadavg()]
    result["machine"] = machine()
    return result


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench fleet-worker`` (``--messages``: batches per phase)."""
    if nats_server_binary() is None:
        raise UserError("bench fleet-worker: nats-server is not installed (docs/fleet.md)")
    configure_logging("warning", "json")
    with tempfile.TemporaryDirectory(prefix="edge-agent-fleet-bench-") as directory:
        try:
            return asyncio.run(measure(args.messages or 2000, Path(directory)))
        except (ClusterError, OSError, asyncpg.PostgresError) as error:
            raise UserError(f"bench fleet-worker: {error}") from None
