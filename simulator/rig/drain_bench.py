"""``edge-agent bench drain``: how much faster than real time the cloud link drains a backlog.

The standard drive's telemetry: four streams (chassis, powertrain, adas, motion) of the
synthetic CAN-shaped drive of ``bench batch`` (about 1,100 samples/s), each cut into a batch
format record every 5 s, so 0.8 records/s. An offline period of ``--seconds`` (default
one hour) leaves that many records in the spool; then a private mosquitto (mutual TLS, on a
free loopback port) comes up, the real ``cloud-link`` module runs under a supervisor, and
ingest goes on at the drive's rate while the backlog drains. ``drained_per_s`` counts
records the broker acknowledged (PUBACK) per second from the moment the link was online
until the whole backlog was acknowledged; ``ratio`` is ``drained_per_s / produced_per_s``.
It lives with the private broker it needs (test equipment), so an install without the
simulator does not list it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from edge_agent.bench.report import machine
from edge_agent.config import validate_config
from edge_agent.logs import configure_logging
from edge_agent.module_api import ModuleState
from edge_agent.modules.telemetry.batch import ClockQuality, Sample, encode_samples
from edge_agent.modules.telemetry.batch_bench import synthetic_drive
from edge_agent.simulator.certs import DevCA
from edge_agent.simulator.rig.broker import BrokerTls, LocalBroker
from edge_agent.spool import AppendRequest, AsyncSpool, SpoolPriority
from edge_agent.supervisor import Supervisor

VEHICLE = "bench-vehicle"
BATCH_PERIOD_S = 5.0
VARIANTS = 12  # distinct windows encoded; longer backlogs reuse them (new message ids)
STREAMS: dict[str, tuple[str, ...]] = {
    "chassis": (
        "VehicleSpeed",
        "LongAccel",
        "LatAccel",
        "YawRate",
        "Steering",
        "WheelSpeedFL",
        "WheelSpeedFR",
        "WheelSpeedRL",
        "WheelSpeedRR",
    ),
    "powertrain": ("EngineSpeed", "Throttle", "Gear", "CoolantTemp", "Odometer"),
    "adas": ("ObjectDistance", "RelSpeed", "BrakePedal"),
    "motion": ("Latitude", "Longitude", "ImuAccX", "ImuAccY", "ImuAccZ"),
}


def drive_windows(count: int) -> list[dict[str, bytes]]:
    """``count`` windows of the drive, each one batch (batch format bytes) per stream."""
    windows: list[dict[str, bytes]] = []
    for index in range(count):
        samples, scales = synthetic_drive(BATCH_PERIOD_S, seed=index)
        by_stream: dict[str, list[Sample]] = {stream: [] for stream in STREAMS}
        owner = {signal: stream for stream, signals in STREAMS.items() for signal in signals}
        for sample in samples:
            by_stream[owner[sample.signal]].append(sample)
        windows.append(
            {
                stream: encode_samples(
                    chosen,
                    vehicle_id=VEHICLE,
                    stream=stream,
                    sequence=index,
                    clock=ClockQuality.TRUSTED,
                    scales=scales,
                )
                for stream, chosen in by_stream.items()
            }
        )
    return windows


def _requests(window: dict[str, bytes]) -> list[AppendRequest]:
    return [
        AppendRequest(f"telemetry/{stream}", payload, SpoolPriority.TELEMETRY_HIGH)
        for stream, payload in window.items()
    ]


async def _produce(spool: AsyncSpool, windows: list[dict[str, bytes]]) -> None:
    """Ingest at the drive's real-time rate: one batch per stream every period."""
    index = 0
    while True:
        await asyncio.sleep(BATCH_PERIOD_S)
        await spool.append_many(_requests(windows[index % len(windows)]))
        index += 1


async def _until(condition: Any, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench drain: {what} not reached within {limit_s} s")
        await asyncio.sleep(0.005)


async def measure(offline_s: float, window: int, directory: Path) -> dict[str, Any]:
    """Fill the spool with ``offline_s`` of driving, then drain it to a private broker."""
    windows = drive_windows(VARIANTS)
    periods = max(1, round(offline_s / BATCH_PERIOD_S))
    spool_path = directory / "spool.db"
    spool = await AsyncSpool.open(spool_path)
    backlog_bytes = 0
    for period in range(periods):
        requests = _requests(windows[period % len(windows)])
        backlog_bytes += sum(len(r.payload) for r in requests)
        await spool.append_many(requests)
    backlog = periods * len(STREAMS)
    await spool.close()

    ca = DevCA.create(directory / "pki")
    server = ca.issue_server(directory / "pki", ["127.0.0.1"])
    client = ca.issue_client(directory / "pki", VEHICLE)
    broker = LocalBroker(
        directory / "broker", tls=BrokerTls(ca.cert_file, server.cert_file, server.key_file)
    )
    config = validate_config(
        {
            "agent": {"vehicle_id": VEHICLE, "state_dir": str(directory / "agent")},
            "spool": {"path": str(spool_path)},
            "modules": {
                "cloud-link": {
                    "config": {
                        "host": "127.0.0.1",
                        "port": broker.port,
                        "inflight_window": window,
                        "tls": {
                            "ca_file": str(ca.cert_file),
                            "cert_file": str(client.cert_file),
                            "key_file": str(client.key_file),
                        },
                    }
                }
            },
        }
    )
    broker.start()
    supervisor = Supervisor(config)
    agent = asyncio.create_task(supervisor.run())
    producer: asyncio.Task[None] | None = None
    try:
        runner = supervisor.runners["cloud-link"]
        await _until(lambda: runner.state is ModuleState.RUNNING, 30, "cloud-link running")
        module: Any = runner.module
        producer = asyncio.create_task(_produce(module.spool, windows))
        await _until(lambda: module.link.online, 30, "link online")
        started = time.perf_counter()
        await _until(lambda: module.uplink.counters.published >= backlog, 600, "backlog drained")
        drain_s = time.perf_counter() - started
        published = module.uplink.counters.published
    finally:
        if producer is not None:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
        supervisor.request_stop()
        await agent
        broker.stop()
    produced_per_s = len(STREAMS) / BATCH_PERIOD_S
    drained_per_s = published / drain_s
    return {
        "produced_per_s": round(produced_per_s, 3),
        "drained_per_s": round(drained_per_s, 1),
        "ratio": round(drained_per_s / produced_per_s, 1),
        "produced_bytes_per_s": round(backlog_bytes / (periods * BATCH_PERIOD_S), 1),
        "drained_bytes_per_s": round(backlog_bytes / drain_s, 1),
        "offline_s": periods * BATCH_PERIOD_S,
        "backlog_records": backlog,
        "backlog_bytes": backlog_bytes,
        "drain_s": round(drain_s, 3),
        "inflight_window": window,
        "tls": True,
        "machine": machine(),
    }


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench drain`` (``--seconds``: offline period, default 3600)."""
    configure_logging("warning", "json")  # stdout carries the figures only
    offline_s = args.seconds or 3600.0
    window = args.messages or 64  # --messages: the in-flight window
    with tempfile.TemporaryDirectory(prefix="edge-agent-drain-") as directory:
        return asyncio.run(measure(offline_s, window, Path(directory)))
