"""``edge-agent-cloud fleet-bench``: the fleet back end under load, with a node and a worker killed.

Given no addresses it starts everything itself: a NATS cluster (``--nodes``, JetStream R3,
MQTT with mutual TLS), a throw-away database on the local PostgreSQL (created and dropped),
``--workers`` worker processes, and ``--vehicles`` vehicles in ``--processes`` generator
processes (:mod:`edge_agent.fleet.generator`). Mid-run it SIGKILLs one NATS node and one
worker and restarts them; at the end the vehicles drain their spools, the workers drain the
stream, and the report compares ids: every batch a vehicle got a PUBACK for must be a row
(``lost`` counts those that are not), and no row may be there twice (``duplicate_rows``, by
SQL). Latency is vehicle send (the uplink's publish) to the row's ``written_at``.

The baseline, measured in the same run: the same figures for the batches sent before the
first kill (``baseline``), and ``p99_ratio`` = p99 of the whole run over the baseline's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NODE_DOWN_S = 15.0
WORKER_DOWN_S = 5.0
DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class BenchOptions:
    """What ``fleet-bench`` runs (its command-line options)."""

    vehicles: int = 1000
    workers: int = 2
    nodes: int = 3
    minutes: float = 3.0
    processes: int = 4
    profile: str = "fleet"
    speedup: float = 1.0
    batch_format: int = 2
    kill: bool = True
    nats: list[str] | None = None
    mqtt: list[tuple[str, int]] | None = None
    ca_file: Path | None = None
    cert_dir: Path | None = None
    db: str | None = None
    admin_dsn: str = DEFAULT_ADMIN_DSN
    workdir: Path | None = None
    offline_share: float = 0.1
    offline_s: float = 20.0
    drain_timeout_s: float = 180.0
    seed: int = 0
    link: dict[str, Any] = field(default_factory=dict)
    profile_drive_s: float = 120.0  # of the standard drive, for the traffic profile

    @property
    def duration_s(self) -> float:
        """The driving time."""
        return self.minutes * 60.0


@dataclass
class Timeline:
    """What happened when (wall-clock seconds), for the report."""

    started: float = field(default_factory=time.time)
    steady_from: float = 0.0  # every vehicle has started (the end of the ramp)
    first_kill: float | None = None
    events: list[tuple[float, str]] = field(default_factory=list)

    def note(self, what: str) -> None:
        """Record ``what`` now."""
        now = time.time()
        if what.startswith("kill") and self.first_kill is None:
            self.first_kill = now
        self.events.append((round(now - self.started, 1), what))


async def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run the bench; the JSON report (see the module docstring)."""
    own_workdir = options.workdir is None
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            return await _run(options, workdir, stack)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Parts:
    """Where the vehicles and workers go: what the bench started, or what it was given."""

    cluster: Any  # NatsCluster | None
    nats_urls: list[str]
    mqtt: list[tuple[str, int]]
    ca_file: Path
    cert_dir: Path
    dsn: str


async def _start_parts(
    options: BenchOptions, workdir: Path, ids: list[str], stack: contextlib.AsyncExitStack
) -> Parts:
    from edge_agent.fleet.bench_parts import scratch_database
    from edge_agent.fleet.cluster import FleetPki, NatsCluster
    from edge_agent.fleet.store import ensure_schema

    if options.nats is None:
        pki = FleetPki.create(workdir / "pki")
        await asyncio.to_thread(lambda: [pki.client(vid) for vid in ids])
        cluster = NatsCluster(workdir / "cluster", nodes=options.nodes, pki=pki, vehicles=ids)
        await stack.enter_async_context(cluster)
        parts = Parts(
            cluster, cluster.nats_urls, cluster.mqtt_addresses, pki.ca_file, pki.directory, ""
        )
    else:
        if not (options.mqtt and options.ca_file and options.cert_dir):
            raise ValueError("--nats needs --mqtt, --ca and --certs (the vehicles' side)")
        parts = Parts(None, options.nats, options.mqtt, options.ca_file, options.cert_dir, "")
    if options.db is not None:
        parts.dsn = options.db
    else:
        parts.dsn = await stack.enter_async_context(scratch_database(options.admin_dsn))
    await ensure_schema(parts.dsn)
    return parts


async def _run(
    options: BenchOptions, workdir: Path, stack: contextlib.AsyncExitStack
) -> dict[str, Any]:
    import nats

    from edge_agent.fleet.bench_parts import WorkerPool
    from edge_agent.fleet.cpu import CpuMeter
    from edge_agent.fleet.generator import FleetLoad, LoadPlan, split
    from edge_agent.fleet.streams import ensure_streams
    from edge_agent.fleet.traffic import build_profile

    ids = [f"bench-{index:05d}" for index in range(options.vehicles)]
    parts = await _start_parts(options, workdir, ids, stack)
    cluster, nats_urls, mqtt, dsn = parts.cluster, parts.nats_urls, parts.mqtt, parts.dsn
    ca_file, cert_dir = parts.ca_file, parts.cert_dir

    async def reconnecting(_error: Exception) -> None:
        """A node killed on purpose: nats-py reconnects to another; nothing to print."""

    connection = await nats.connect(
        servers=nats_urls, max_reconnect_attempts=-1, error_cb=reconnecting
    )
    stack.push_async_callback(connection.close)
    await ensure_streams(connection)  # before any vehicle sends: the consumer is the interest

    workers = WorkerPool(workdir / "workers", nats_urls, dsn, options.workers)
    workers.start()
    stack.callback(workers.stop)
    profile = await asyncio.to_thread(build_profile, options.profile, options.profile_drive_s)
    plan = LoadPlan(
        addresses=list(mqtt),
        ca_file=str(ca_file),
        cert_dir=str(cert_dir),
        spool_dir=str(_spool_dir(workdir, stack)),
        profile=profile,
        shares=split(ids, options.processes),
        duration_s=options.duration_s,
        batch_format=options.batch_format,
        speedup=options.speedup,
        ramp_s=min(30.0, options.duration_s / 6),
        drain_timeout_s=options.drain_timeout_s,
        offline_share=options.offline_share,
        offline_s=min(options.offline_s, options.duration_s / 4),
        seed=options.seed,
        link=options.link,
    )
    timeline = Timeline(steady_from=time.time() + plan.ramp_s)
    meter = CpuMeter()
    load = FleetLoad(workdir / "generator", plan)
    load.start()
    stack.callback(load.stop)
    timeline.note("vehicles started")
    sampling = asyncio.create_task(_sample(meter, cluster, workers, load, dsn))
    chaos = asyncio.create_task(_chaos(options, cluster, workers, timeline))
    try:
        report = await load.wait(options.duration_s + plan.ramp_s + options.drain_timeout_s + 120)
        timeline.note("vehicles drained")
        await chaos
        pipeline = await _drain_pipeline(connection, dsn, options.drain_timeout_s)
        timeline.note("pipeline drained")
    finally:
        chaos.cancel()
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
    cpu = meter.report()
    workers.stop()
    from edge_agent.fleet.report import bench_result

    return await bench_result(
        options,
        report=report,
        dsn=dsn,
        profile=profile,
        timeline=timeline,
        workers=workers,
        nodes_killed=timeline_count(timeline, "kill node"),
        cpu=cpu,
        pipeline=pipeline,
    )


def _spool_dir(workdir: Path, stack: contextlib.AsyncExitStack) -> Path:
    """The vehicles' spools: in memory-backed /dev/shm when there is one.

    Each vehicle of a fleet fsyncs its own disk; a thousand of them fsyncing one shared disk
    would measure that disk, not the back end. The spool code is the same either way.
    """
    shm = Path("/dev/shm")  # noqa: S108 - a private directory made below, removed after
    if shm.is_dir() and os.access(shm, os.W_OK):
        directory = Path(tempfile.mkdtemp(prefix="fleet-spools-", dir=shm))
        stack.callback(shutil.rmtree, directory, True)
        return directory
    return workdir / "spools"


def timeline_count(timeline: Timeline, prefix: str) -> int:
    """How many events of the timeline start with ``prefix``."""
    return sum(1 for _, what in timeline.events if what.startswith(prefix))


async def _chaos(options: BenchOptions, cluster: Any, workers: Any, timeline: Timeline) -> None:
    """Kill a NATS node at 35 % of the run and a worker at 55 %, restarting each."""
    from edge_agent.fleet.cluster import ClusterError

    if not options.kill:
        return
    duration = options.duration_s
    started = time.monotonic()

    async def at(share: float) -> None:
        await asyncio.sleep(max(0.0, started + share * duration - time.monotonic()))

    if cluster is not None and options.nodes > 1:
        await at(0.35)
        victim = 1 % options.nodes
        await cluster.kill(victim)
        timeline.note(f"kill node {victim}")
        await asyncio.sleep(min(NODE_DOWN_S, duration / 8))
        try:
            await cluster.restart(victim)
        except ClusterError as error:  # slow to become healthy: the run goes on, and says so
            timeline.note(f"node {victim} restarted, not ready: {error}")
        else:
            timeline.note(f"node {victim} back")
    if options.workers >= 1:
        await at(0.55)
        await asyncio.to_thread(workers.kill, 0)
        timeline.note("kill worker 0")
        await asyncio.sleep(min(WORKER_DOWN_S, duration / 10))
        workers.restart(0)
        timeline.note("worker 0 back")


async def _sample(meter: Any, cluster: Any, workers: Any, load: Any, dsn: str) -> None:
    from edge_agent.fleet.bench_parts import backend_pids
    from edge_agent.fleet.cpu import pids_running

    postgres: list[int] = []
    tick = 0
    while True:
        if tick % 5 == 0:
            with contextlib.suppress(Exception):
                postgres = await backend_pids(dsn)
        if cluster is not None:
            meter.sample("nats_nodes", pids_running(str(cluster.workdir)))
        meter.sample("workers", workers.pids)
        meter.sample("generator", load.pids)
        meter.sample("postgresql", postgres)
        meter.tick()
        tick += 1
        await asyncio.sleep(1.0)


async def _drain_pipeline(connection: Any, dsn: str, timeout_s: float) -> dict[str, Any]:
    """Wait until the workers' consumer has nothing pending or out, and the rows stop growing."""
    from edge_agent.fleet.store import counts
    from edge_agent.fleet.streams import CONSUMER, MESSAGES_STREAM

    jsm = connection.jetstream()
    deadline = time.monotonic() + timeout_s
    last_rows = -1
    info: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            info = await jsm.consumer_info(MESSAGES_STREAM, CONSUMER)
        rows = (await counts(dsn))["batches"]
        idle = info is not None and not info.num_pending and not info.num_ack_pending
        if idle and rows == last_rows:
            break
        last_rows = rows
        await asyncio.sleep(1.0)
    return {
        "num_pending": None if info is None else info.num_pending,
        "num_ack_pending": None if info is None else info.num_ack_pending,
        "num_redelivered": None if info is None else info.num_redelivered,
        "drained": info is not None and not info.num_pending and not info.num_ack_pending,
    }
