"""The CAN reader module: several buses, DBC decoding, status, counters, and a frame writer.

For every configured bus it publishes a ``DecodedMessage`` per decodable frame on
``can/{bus}/decoded/{message}`` (raw frames on ``can/{bus}/raw`` when asked), bus state changes
on ``can/{bus}/status`` (control priority), and serves ``can/{bus}/send`` (request: a
``FrameToSend``; reply: ``{"bus", "arbitration_id", "sent"}``). Reading never blocks the event
loop (see ``edge_agent.can.ingest``); each bus reconnects on its own after a failure, so one
bad bus neither stops nor slows the others.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edge_agent.bus import Message
from edge_agent.can.databases import load_database
from edge_agent.can.dbc import DbcLoadResult
from edge_agent.can.decode import FrameDecoder
from edge_agent.can.resources import resolve_data_path
from edge_agent.can.types import BusState, FrameToSend, send_topic
from edge_agent.can.vss import load_vss_mapping, signal_names
from edge_agent.metrics import Sample
from edge_agent.module_api import Module, NotReady
from edge_agent.modules.can_reader.config import BusConfig, CanReaderConfig
from edge_agent.modules.can_reader.connection import BusConnection
from edge_agent.modules.can_reader.metrics import can_reader_metrics


@dataclass
class BusSetup:
    """What loading one bus's DBC (and VSS mapping) gave: decoder, load report, mapping misses."""

    decoder: FrameDecoder
    dbc: DbcLoadResult
    unmapped: list[str]


def prepare_bus(config: BusConfig) -> BusSetup:
    """Load the bus's DBC leniently and its VSS mapping, and build its frame decoder.

    Raises ``DbcError``, ``VssMappingError`` or ``ValueError`` (unknown message names) with a
    one-line reason.
    """
    loaded = load_database(resolve_data_path(config.dbc))
    database = loaded.database
    wanted: set[str] | None = None
    if config.messages is not None:
        wanted = set(config.messages)
        missing = sorted(wanted - {message.name for message in database.messages})
        if missing:
            raise ValueError(
                f"bus {config.name}: messages not in the usable DBC: {', '.join(missing)}"
            )
    names: dict[str, dict[str, str]] = {}
    unmapped: list[str] = []
    if config.vss_mapping is not None:
        mapping = load_vss_mapping(resolve_data_path(config.vss_mapping))
        names, unmapped = signal_names(mapping, database.messages)
    decoder = FrameDecoder(database, bus=config.name, signal_names=names, messages=wanted)
    return BusSetup(decoder, loaded, unmapped)


def frame_from_payload(payload: Any) -> FrameToSend:
    """A FrameToSend from a request payload: one already, or a mapping of its fields.

    In a mapping, ``data`` may be bytes or a hex string.
    """
    if isinstance(payload, FrameToSend):
        return payload
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a FrameToSend or a mapping, not {type(payload).__name__}")
    data = payload.get("data", b"")
    if isinstance(data, str):
        data = bytes.fromhex(data)
    if not isinstance(data, bytes | bytearray) or not isinstance(
        payload.get("arbitration_id"), int
    ):
        raise TypeError("frame needs an integer arbitration_id and bytes (or hex) data")
    return FrameToSend(
        payload["arbitration_id"],
        bytes(data),
        bool(payload.get("is_extended_id", False)),
        bool(payload.get("is_fd", False)),
    )


class CanReaderModule(Module[CanReaderConfig]):
    """Reads, decodes and publishes CAN traffic of several buses; sends frames on request."""

    name = "can-reader"
    version = "1.0.0"
    config_model = CanReaderConfig

    @classmethod
    def health_metrics(cls, details: Mapping[str, Any]) -> Iterable[Sample]:
        """Prometheus metrics from the module's health details (see its ``metrics`` file)."""
        return can_reader_metrics(details)

    async def setup(self) -> None:
        """Load every bus's DBC (in a worker thread: big files take a while)."""
        self.connections: dict[str, BusConnection] = {}
        log = self.context.log
        for bus_config in self.config.buses:
            prepared = await asyncio.to_thread(prepare_bus, bus_config)
            report = prepared.dbc
            log.info(
                "DBC loaded",
                bus=bus_config.name,
                dbc=report.source,
                messages=report.message_count,
                signals=report.signal_count,
                decoding=len(prepared.decoder.codecs),
                skipped=len(report.skipped),
            )
            for item in report.skipped:
                log.warning(
                    "DBC entry skipped",
                    bus=bus_config.name,
                    message=item.message,
                    reason=item.reason,
                )
            if prepared.unmapped:
                log.warning(
                    "VSS mapping entries match no signal",
                    bus=bus_config.name,
                    entries=prepared.unmapped[:10],
                )
            self.connections[bus_config.name] = BusConnection(
                bus_config,
                prepared.decoder,
                self.config,
                self.context,
                on_change=self._update_health,
            )

    async def start(self) -> None:
        """Open every bus; ready once each has had its first try and at least one is up."""
        for connection in self.connections.values():
            self.context.spawn(connection.keep_connected(), f"bus[{connection.name}]")
        await asyncio.gather(*(c.first_attempt.wait() for c in self.connections.values()))
        if all(c.state is BusState.DOWN for c in self.connections.values()):
            reasons = "; ".join(f"{c.name}: {c.reason}" for c in self.connections.values())
            raise NotReady(f"no CAN bus could be opened ({reasons})")
        for connection in self.connections.values():
            responder = functools.partial(self._send, connection)
            self.context.on_stop(
                self.context.bus.serve(
                    send_topic(connection.name),
                    responder,
                    name=f"{self.name}:send:{connection.name}",
                )
            )
        self.context.spawn(self._report(), "report")
        self._update_health()

    async def _send(self, connection: BusConnection, request: Message) -> dict[str, Any]:
        frame = frame_from_payload(request.payload)
        await connection.send(frame)
        return {"bus": connection.name, "arbitration_id": frame.arbitration_id, "sent": True}

    async def _report(self) -> None:
        clock = self.context.clock
        while True:
            now = clock.monotonic()
            for connection in self.connections.values():
                connection.tick(now)
            self._update_health()
            await clock.sleep(self.config.stats_interval_s)

    def _update_health(self) -> None:
        health = self.context.health
        buses = {name: c.details() for name, c in self.connections.items()}
        health.set_detail("buses", buses)
        health.set_detail("frames", sum(b["frames"] for b in buses.values()))
        health.set_detail("frames_per_s", round(sum(b["frames_per_s"] for b in buses.values()), 1))
        troubled = [
            f"{name}: {c.state} ({c.reason})"
            for name, c in self.connections.items()
            if c.state is not BusState.UP
        ]
        if troubled:
            health.degraded("; ".join(troubled))
        else:
            health.healthy()

    async def stop(self) -> None:
        """Stop every bus's reader and shut the buses down."""
        connections = getattr(self, "connections", {})
        await asyncio.gather(*(c.close() for c in connections.values()))
