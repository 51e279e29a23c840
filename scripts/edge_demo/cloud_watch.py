"""What reaches the cloud: a plain MQTT subscriber on the vehicle's topics.

It decodes telemetry batches with the package's reference decoder, drops duplicates by
message id (a batch re-sent after an outage carries the same id) and counts what arrived,
so the live view can show the backlog landing after the link comes back. The project's cloud
stand-in (``edge-agent-cloud serve``, the reference back-end consumer, storing into SQLite)
runs beside it when it is installed; its summaries are shown too.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt

from edge_agent.modules.telemetry.batch import BatchFormatError, decode_batch


@dataclass
class CloudView:
    """Counters of what arrived, by kind, plus the newest events."""

    connected: bool = False
    batches: int = 0
    samples: int = 0
    duplicates: int = 0
    bad_batches: int = 0
    events: int = 0
    dtcs: list[dict[str, Any]] = field(default_factory=list)  # diag/dtc events, in order
    reported: int = 0
    status: str = "?"
    last_arrival: float | None = None
    last_event: dict[str, Any] = field(default_factory=dict)
    message_ids: set[bytes] = field(default_factory=set)
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (wall, batches so far)
    standin: dict[str, Any] = field(default_factory=dict)  # edge-agent-cloud's own summary

    def take(self, topic: str, payload: bytes) -> None:
        """Count one message of the vehicle."""
        suffix = topic.split("/", 2)[2] if topic.count("/") >= 2 else topic
        now = time.time()
        self.last_arrival = now
        if suffix.startswith("telemetry/"):
            try:
                batch = decode_batch(payload)
            except BatchFormatError:
                self.bad_batches += 1
                return
            if batch.message_id in self.message_ids:
                self.duplicates += 1
                return
            self.message_ids.add(batch.message_id)
            self.batches += 1
            self.samples += batch.sample_count
            self.arrivals.append((now, self.batches))
        elif suffix == "events" or suffix.startswith("events/"):
            self.events += 1
            with contextlib.suppress(ValueError):
                event = json.loads(payload)
                if isinstance(event, dict):
                    self.last_event = event
        elif suffix == "diag/dtc":
            with contextlib.suppress(ValueError):
                dtc = json.loads(payload)
                if isinstance(dtc, dict):
                    self.dtcs.append(dtc)
        elif suffix == "state/reported":
            self.reported += 1
        elif suffix == "status":
            self.status = payload.decode(errors="replace")[:40]


async def watch(host: str, port: int, vehicle_id: str, protocol: str, view: CloudView) -> None:
    """Subscribe to ``vehicles/{vehicle_id}/#`` and count into ``view`` until cancelled."""
    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311
    while True:
        try:
            async with aiomqtt.Client(
                host, port, identifier="edge-demo-cloud-view", protocol=version, keepalive=5
            ) as client:
                await client.subscribe(f"vehicles/{vehicle_id}/#", qos=1)
                view.connected = True
                async for message in client.messages:
                    payload = message.payload
                    if isinstance(payload, bytes | bytearray):
                        view.take(str(message.topic), bytes(payload))
        except aiomqtt.MqttError:
            view.connected = False
            await asyncio.sleep(1.0)


STANDIN_MODULE = "edge_agent.simulator.cloud"


def standin_available() -> bool:
    """Whether the cloud stand-in (``edge-agent-cloud``) is installed."""
    return importlib.util.find_spec(STANDIN_MODULE) is not None


def standin_command(
    python: list[str], host: str, port: int, vehicle_id: str, database: Path
) -> list[str]:
    """``edge-agent-cloud serve`` for one vehicle, plaintext, a JSON summary every second."""
    return [
        *python, "-m", STANDIN_MODULE, "serve", "--host", host, "--port", str(port),
        "--no-tls", "--db", str(database), "--fleet", vehicle_id, "--client-id",
        "edge-demo-cloud-standin", "--summary-every", "1", "--json",
    ]  # fmt: skip


async def follow_standin(stream: asyncio.StreamReader, vehicle_id: str, view: CloudView) -> None:
    """Keep ``view.standin`` at the stand-in's newest summary of ``vehicle_id``."""
    while line := await stream.readline():
        with contextlib.suppress(ValueError, AttributeError):
            summary = json.loads(line)
            vehicle = summary.get("vehicles", {}).get(vehicle_id)
            if isinstance(vehicle, dict):
                view.standin = vehicle
