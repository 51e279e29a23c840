"""The telemetry module: decoded CAN values -> collection schemes -> batches -> spool.

It subscribes to decoded messages on the bus (bounded, oldest dropped and counted), applies
each stream's collection schemes and the capture rules, cuts batches by size and age,
encodes them in the batch format (v2, or v1 with ``batch_format = 1``) off the event loop,
and appends them to the agent's spool, where they are durable before they count as
produced. ``snapshot`` requests on the bus (``telemetry/snapshot``) trigger captures now.
New options apply in place.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from edge_agent.batch import (
    MICROSECONDS,
    MILLISECONDS,
    ClockQuality,
    Sample,
    WallClockTrust,
    current_boot_id,
    encode_samples,
    new_message_id,
)
from edge_agent.bus import Message, OverflowPolicy
from edge_agent.can.dbc import DbcError
from edge_agent.can.types import DecodedMessage
from edge_agent.module_api import Module
from edge_agent.modules.telemetry.capture import Capture
from edge_agent.modules.telemetry.config import TelemetryConfig
from edge_agent.modules.telemetry.scales import load_scale_hints
from edge_agent.modules.telemetry.schemes import Collector
from edge_agent.modules.telemetry.streams import StreamBuffer
from edge_agent.spool import SpoolPriority

SNAPSHOT_TOPIC = "telemetry/snapshot"
CUT_CHECK_S = 0.5
PRIORITIES = {
    "telemetry-high": SpoolPriority.TELEMETRY_HIGH,
    "telemetry-low": SpoolPriority.TELEMETRY_LOW,
}


class TelemetryModule(Module[TelemetryConfig]):
    """Collects decoded signals into prioritised streams and condition captures."""

    name = "telemetry"
    version = "1.0.0"
    config_model = TelemetryConfig

    async def setup(self) -> None:
        """Build collectors and buffers from the config; read the stream sequence numbers."""
        self.counters = {
            "messages": 0,
            "samples": 0,
            "batches": 0,
            "batch_bytes": 0,
            "refused": 0,
            "no_spool": 0,
            "captures": 0,
        }
        self._sequence_file = self.context.state_dir / "sequences.json"
        self._sequences: dict[str, int] = _read_sequences(self._sequence_file)
        self._trust = WallClockTrust(self.config.clock_trust)
        self._boot_id = current_boot_id()
        self._cutting: set[asyncio.Task[None]] = set()
        self._stream_locks: dict[str, asyncio.Lock] = {}
        self._build(self.config)
        self._scales = await asyncio.to_thread(load_scale_hints, self.config.scale_dbc)

    def _build(self, config: TelemetryConfig) -> None:
        self._rules: dict[str, list[tuple[str, Collector]]] = {}
        self._buffers: dict[str, StreamBuffer] = {}
        for stream in config.streams:
            self._buffers[stream.name] = StreamBuffer(
                stream.name, stream.priority, config.batch_max_samples, config.batch_max_age_s
            )
            for rule in stream.signals:
                self._rules.setdefault(rule.signal, []).append((stream.name, Collector(rule)))
        self._captures = [Capture(rule) for rule in config.captures]
        self._capture_signals = frozenset(
            {s for c in config.captures for s in c.signals}
            | {c.when.signal for c in config.captures if c.when is not None}
        )

    async def start(self) -> None:
        """Subscribe to decoded messages and answer snapshot requests."""
        self._inbox = self.context.bus.subscribe(
            self.config.source,
            maxsize=self.config.queue_size,
            overflow=OverflowPolicy.DROP_OLDEST,
            name="telemetry.decoded",
        )
        self.context.on_stop(lambda: self.context.bus.unsubscribe(self._inbox))
        self.context.on_stop(self.context.bus.serve(SNAPSHOT_TOPIC, self._snapshot))
        self.context.spawn(self._cut_by_age(), "cut-by-age")

    async def run(self) -> None:
        """Turn every decoded message into samples until stopped."""
        async for message in self._inbox:
            payload = message.payload
            if isinstance(payload, DecodedMessage):
                self._ingest(payload)

    def _ingest(self, decoded: DecodedMessage) -> None:
        self.counters["messages"] += 1
        now = decoded.monotonic
        for signal, value in decoded.signals.items():
            rules = self._rules.get(signal)
            sample: Sample | None = None
            if rules:
                for stream, collector in rules:
                    if collector.offer(now, value):
                        sample = sample or Sample(signal, now, decoded.timestamp, value)
                        self.counters["samples"] += 1
                        if self._buffers[stream].add(sample, now):
                            self._cut(stream)
            if signal in self._capture_signals:
                sample = sample or Sample(signal, now, decoded.timestamp, value)
                for capture in self._captures:
                    finished = capture.observe(sample)
                    if finished:
                        self._send_capture(capture, finished)

    def _send_capture(self, capture: Capture, samples: list[Sample]) -> None:
        self.counters["captures"] += 1
        rule = capture.rule
        self._start_cut(rule.stream, rule.priority, samples)

    def _cut(self, stream: str) -> None:
        buffer = self._buffers[stream]
        samples = buffer.take()
        if samples:
            self._start_cut(stream, buffer.priority, samples)

    def _start_cut(self, stream: str, priority: str, samples: list[Sample]) -> None:
        task = asyncio.get_running_loop().create_task(
            self._encode_and_spool(stream, priority, samples), name=f"telemetry.cut[{stream}]"
        )
        self._cutting.add(task)
        task.add_done_callback(self._cutting.discard)

    async def _encode_and_spool(self, stream: str, priority: str, samples: list[Sample]) -> None:
        # One cut per stream at a time: batches reach the spool in sequence order.
        lock = self._stream_locks.setdefault(stream, asyncio.Lock())
        async with lock:
            await self._encode_and_spool_in_order(stream, priority, samples)

    async def _encode_and_spool_in_order(
        self, stream: str, priority: str, samples: list[Sample]
    ) -> None:
        sequence = self._sequences.get(stream, 0) + 1
        self._sequences[stream] = sequence
        message_id = new_message_id()
        trusted = self._trust.trusted()
        payload = await asyncio.to_thread(
            encode_samples,
            samples,
            vehicle_id=self.context.vehicle_id,
            stream=stream,
            sequence=sequence,
            clock=ClockQuality.TRUSTED if trusted else ClockQuality.UNTRUSTED,
            resolution=MICROSECONDS if self.config.resolution == "us" else MILLISECONDS,
            message_id=message_id,
            boot_id=self._boot_id,
            scales=self._scales,
            pack=self.config.batch_format >= 2,
        )
        spool = self.context.spool
        if spool is None:
            self.counters["no_spool"] += 1
            self.context.health.degraded("no spool: batches are not kept")
            return
        result = await spool.append(
            f"telemetry/{stream}", payload, priority=PRIORITIES[priority], message_id=message_id
        )
        if result.stored:
            self.counters["batches"] += 1
            self.counters["batch_bytes"] += len(payload)
            await asyncio.to_thread(_write_sequences, self._sequence_file, dict(self._sequences))
        else:
            self.counters["refused"] += 1
            self.context.health.set_detail("last_refusal", result.refused)

    async def _cut_by_age(self) -> None:
        while True:
            await asyncio.sleep(CUT_CHECK_S)
            now = self.context.clock.monotonic()
            for name, buffer in self._buffers.items():
                if buffer.due(now):
                    self._cut(name)
            for capture in self._captures:
                finished = capture.poll(now)
                if finished:
                    self._send_capture(capture, finished)
            self._report()

    def _report(self) -> None:
        health = self.context.health
        for key, value in self.counters.items():
            health.set_detail(key, value)
        health.set_detail("dropped", self._inbox.dropped)
        health.set_detail("buffered", sum(len(b.samples) for b in self._buffers.values()))

    async def _snapshot(self, message: Message) -> dict[str, Any]:
        wanted = None
        if isinstance(message.payload, dict):
            wanted = message.payload.get("capture")
        now = self.context.clock.monotonic()
        started = [
            c.rule.name
            for c in self._captures
            if (wanted in (None, c.rule.name)) and c.trigger(now)
        ]
        if wanted is not None and not any(c.rule.name == wanted for c in self._captures):
            raise ValueError(f"no capture named {wanted!r}")
        return {"started": started}

    async def reconfigure(self, config: TelemetryConfig) -> bool:
        """Flush what is buffered under the old rules, then collect by the new ones."""
        if config.source != self.config.source or config.queue_size != self.config.queue_size:
            return False
        if config.scale_dbc != self.config.scale_dbc:
            try:
                self._scales = await asyncio.to_thread(load_scale_hints, config.scale_dbc)
            except DbcError:
                return False  # a restart reports the unreadable DBC as a start failure
        for name in list(self._buffers):
            self._cut(name)
        self.config = config
        self._build(config)
        return True

    async def stop(self) -> None:
        """Cut every stream's partial batch and wait for the spool to take them."""
        for name in list(getattr(self, "_buffers", {})):
            self._cut(name)
        if getattr(self, "_cutting", None):
            await asyncio.gather(*self._cutting, return_exceptions=True)


def _read_sequences(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_sequences(path: Path, sequences: dict[str, int]) -> None:
    fd, temporary = tempfile.mkstemp(prefix=".sequences.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(sequences, handle)
    os.replace(temporary, path)
