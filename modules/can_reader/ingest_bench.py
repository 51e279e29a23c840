"""``edge-agent bench ingest``: the agent's CAN ingest path against a bare loop, same traffic.

Both sides read the same frames from python-can's ``virtual`` interface, queued up before the
clock starts, so the figure is how fast each side drains them:

* baseline: ``bus.recv`` plus ``cantools`` ``decode_message`` in one plain loop;
* agent: :class:`~edge_agent.can.ingest.BusIngest` (reader thread, decoder, hand-off, pump)
  publishing a ``DecodedMessage`` per frame on the in-process bus, with a telemetry-like
  subscriber (bounded queue, BLOCK policy) that consumes every message.

Runs alternate (so machine drift hits both) and the medians are reported. A paced phase then
sends at half the agent's measured rate for ``--seconds`` and counts drops, which must be 0.

The CAN reader contributes it (entry-point group ``edge_agent.benchmarks``): it measures the
ingest path the reader runs. Without ``--dbc`` the frames come from the simulator's DBC.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import can
from cantools.database.can import Database

from edge_agent.bench.report import machine
from edge_agent.bus import Bus, OverflowPolicy
from edge_agent.can.databases import load_database
from edge_agent.can.decode import FrameDecoder
from edge_agent.can.ingest import BusIngest
from edge_agent.can.logs import LogStats, open_log
from edge_agent.can.resources import resolve_data_path
from edge_agent.can.types import DecodedMessage
from edge_agent.cli.exit_codes import UserError

DEFAULT_DBC = "the simulator's data/vehicle.dbc"
SUBSCRIBER_QUEUE = 1000
DRAIN_TIMEOUT_S = 60.0


def default_dbc() -> Path:
    """The simulator's DBC, located without importing the simulator.

    A vehicle install may leave the simulator out; then there is no default, and the error
    says to pass ``--dbc FILE``.
    """
    spec = importlib.util.find_spec("edge_agent.simulator")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise UserError(
            "bench ingest: the simulator (whose DBC is the default) is not installed; "
            "pass --dbc FILE"
        )
    return Path(locations[0]) / "data" / "vehicle.dbc"


def traffic_from_dbc(database: Database, count: int) -> list[can.Message]:
    """``count`` frames cycling through the DBC's messages with values that keep changing."""
    messages = [m for m in database.messages if not m.is_multiplexed()]
    frames: list[can.Message] = []
    for index in range(count):
        message = messages[index % len(messages)]
        values: dict[str, float] = {}
        for position, signal in enumerate(message.signals):
            low = signal.minimum if signal.minimum is not None else 0.0
            high = signal.maximum if signal.maximum is not None else low + 100.0
            phase = (math.sin(index / 97.0 + position) + 1) / 2
            values[signal.name] = low + (high - low) * phase
        data = message.encode(values, strict=False)
        frames.append(
            can.Message(
                arbitration_id=message.frame_id,
                data=data,
                is_extended_id=bool(message.is_extended_frame),
                is_fd=bool(message.is_fd),
            )
        )
    return frames


def traffic_from_log(path: str, count: int) -> list[can.Message]:
    """Up to ``count`` frames of a recorded log (repeated when it is shorter)."""
    recorded = list(open_log(path, LogStats()))
    if not recorded:
        raise ValueError(f"{path}: no frames")
    return [recorded[i % len(recorded)] for i in range(count)]


def _queued(frames: list[can.Message]) -> tuple[can.BusABC, can.BusABC]:
    """A (sender, receiver) pair of virtual buses with ``frames`` waiting at the receiver."""
    channel = f"bench-ingest-{uuid.uuid4().hex}"
    receiver = can.Bus(interface="virtual", channel=channel)
    sender = can.Bus(interface="virtual", channel=channel)
    for frame in frames:
        sender.send(frame)
    return sender, receiver


def baseline_rate(frames: list[can.Message], database: Database) -> float:
    """Frames per second of a bare ``recv`` + cantools decode loop draining ``frames``."""
    sender, receiver = _queued(frames)
    decode: Any = database.decode_message  # takes python-can's bytearray data as it is
    try:
        started = time.perf_counter()
        for _ in range(len(frames)):
            frame = receiver.recv(1.0)
            if frame is None:
                break
            try:
                decode(frame.arbitration_id, frame.data, decode_choices=False)
            except Exception:  # noqa: S112 - a bare loop just skips what it cannot decode
                continue
        return len(frames) / (time.perf_counter() - started)
    finally:
        sender.shutdown()
        receiver.shutdown()


async def _agent_run(
    frames: list[can.Message], database: Database, expected: int
) -> tuple[float, int]:
    sender, receiver = _queued(frames)
    bus = Bus()
    telemetry = bus.subscribe(
        "can/+/decoded/#",
        maxsize=SUBSCRIBER_QUEUE,
        overflow=OverflowPolicy.BLOCK,
        name="bench.telemetry",
    )
    ingest = BusIngest("bench", receiver, FrameDecoder(database, bus="bench"), bus)
    consumed = 0
    signals = 0
    try:
        started = time.perf_counter()
        ingest.start()
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            while consumed < expected:
                message = await telemetry.get()
                payload: DecodedMessage = message.payload
                signals += len(payload.signals)  # touch what telemetry would read
                consumed += 1
        elapsed = time.perf_counter() - started
    finally:
        await ingest.stop()
        sender.shutdown()
        receiver.shutdown()
        await bus.close()
    return len(frames) / elapsed, ingest.counters.drops + telemetry.dropped


def _paced(
    database: Database, frames: list[can.Message], rate: float, seconds: float
) -> dict[str, Any]:
    """Send at ``rate`` frames/s for ``seconds`` through the agent path; count what arrived."""

    async def run() -> dict[str, Any]:
        channel = f"bench-ingest-paced-{uuid.uuid4().hex}"
        receiver = can.Bus(interface="virtual", channel=channel)
        sender = can.Bus(interface="virtual", channel=channel)
        bus = Bus()
        telemetry = bus.subscribe(
            "can/+/decoded/#", maxsize=SUBSCRIBER_QUEUE, overflow=OverflowPolicy.BLOCK
        )
        ingest = BusIngest("bench", receiver, FrameDecoder(database, bus="bench"), bus)
        sent = [0]

        def send() -> None:
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < seconds:
                due = int(elapsed * rate)
                while sent[0] < due:
                    sender.send(frames[sent[0] % len(frames)])
                    sent[0] += 1
                time.sleep(0.001)

        ingest.start()
        thread = threading.Thread(target=send, name="bench.paced-sender", daemon=True)
        consumed = 0
        try:
            thread.start()
            while thread.is_alive():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await telemetry.get()
                    consumed += 1
            # Then whatever is still on its way, until all is accounted for (or it stops coming).
            lost = ingest.counters.drops + telemetry.dropped
            with contextlib.suppress(TimeoutError):
                while consumed + lost < sent[0]:
                    async with asyncio.timeout(1.0):
                        await telemetry.get()
                    consumed += 1
        finally:
            thread.join()
            await ingest.stop()
            sender.shutdown()
            receiver.shutdown()
            await bus.close()
        return {
            "paced_target_frames_per_s": round(rate),
            "paced_sent_frames_per_s": round(sent[0] / seconds),
            "paced_frames": sent[0],
            "paced_consumed": consumed,
            "paced_drops": ingest.counters.drops + telemetry.dropped,
        }

    return asyncio.run(run())


def run_ingest_benchmark(
    *,
    frames: int = 100_000,
    runs: int = 5,
    seconds: float = 2.0,
    dbc: str | None = None,
    log: str | None = None,
) -> dict[str, Any]:
    """Measure agent and baseline ingest rates (medians of interleaved runs) and paced drops."""
    database = load_database(resolve_data_path(dbc) if dbc else default_dbc()).database
    traffic = traffic_from_log(log, frames) if log else traffic_from_dbc(database, frames)
    decoder = FrameDecoder(database)
    expected = sum(1 for frame in traffic if isinstance(decoder.decode(frame), DecodedMessage))
    agent_rates: list[float] = []
    baseline_rates: list[float] = []
    drops = 0
    for _ in range(runs):
        baseline_rates.append(baseline_rate(traffic, database))
        rate, dropped = asyncio.run(_agent_run(traffic, database, expected))
        agent_rates.append(rate)
        drops += dropped
    agent = sorted(agent_rates)[runs // 2]
    baseline = sorted(baseline_rates)[runs // 2]
    paced = _paced(database, traffic, agent / 2, seconds) if seconds > 0 else {}
    return {
        "agent_frames_per_s": round(agent),
        "baseline_frames_per_s": round(baseline),
        "ratio": round(agent / baseline, 3),
        "drops": drops + int(paced.get("paced_drops", 0)),
        "frames": frames,
        "decodable_frames": expected,
        "runs": runs,
        "agent_runs": [round(r) for r in agent_rates],
        "baseline_runs": [round(r) for r in baseline_rates],
        **paced,
        "dbc": dbc or DEFAULT_DBC,
        "log": log,
        "machine": machine(),
    }


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench ingest``: ``--messages --runs --seconds --dbc --log``."""
    return run_ingest_benchmark(
        frames=args.messages or 100_000,
        runs=args.runs or 5,
        seconds=2.0 if args.seconds is None else args.seconds,
        dbc=args.dbc,
        log=args.log,
    )
