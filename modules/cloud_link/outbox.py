"""The way upstream: everything the vehicle sends goes into the spool before it is published.

:class:`Outbox` appends records (stream = MQTT topic suffix) and wakes the uplink;
:func:`forward_bus_to_spool` takes what modules publish on ``cloud/out/{suffix}`` and
spools it, several messages per transaction.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from edge_agent.bus import Bus, Message, OverflowPolicy
from edge_agent.logs import get_logger
from edge_agent.modules.cloud_link.topics import EVENTS, OUT_PREFIX
from edge_agent.spool import AppendRequest, AppendResult, AsyncSpool, SpoolPriority

MAX_GROUP = 256
RETAINED_STREAMS = frozenset({"state/reported"})
# Published retained so a back end that subscribes later still finds them (signal catalogues).
RETAINED_PREFIXES = ("catalog/",)


def retained(stream: str) -> bool:
    """Whether records of upstream ``stream`` are published with the MQTT retain flag."""
    return stream in RETAINED_STREAMS or (
        stream.startswith(RETAINED_PREFIXES) and not stream.endswith("/ack")
    )


_log = get_logger("edge_agent.module.cloud-link")


def priority_of(stream: str) -> SpoolPriority:
    """The spool priority of an upstream stream: events, telemetry (low), or control."""
    if stream == EVENTS or stream.startswith(EVENTS + "/"):
        return SpoolPriority.EVENTS
    if stream.startswith("telemetry/"):
        return SpoolPriority.TELEMETRY_LOW
    return SpoolPriority.CONTROL


def valid_stream(stream: str) -> bool:
    """Whether ``stream`` can be a topic suffix: no wildcards, no empty or ``$`` start."""
    return (
        bool(stream)
        and not stream.startswith(("/", "$"))
        and not any(char in stream for char in "+#\x00")
    )


def encode_payload(payload: Any) -> bytes:
    """Bytes as they are; anything else as compact JSON (UTF-8)."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


class Outbox:
    """Appends upstream records to the spool and wakes the uplink when something arrived."""

    def __init__(self, spool: AsyncSpool) -> None:
        self.spool = spool
        self.arrived = asyncio.Event()
        self.refused = 0

    async def send(
        self, stream: str, payload: Any, priority: SpoolPriority | None = None
    ) -> AppendResult:
        """Spool one record for ``stream`` (a topic suffix); returns once it is durable."""
        results = await self.send_many([(stream, payload, priority)])
        return results[0]

    async def send_many(
        self, items: list[tuple[str, Any, SpoolPriority | None]]
    ) -> list[AppendResult]:
        """Spool several records in one transaction (one fsync)."""
        requests = [
            AppendRequest(stream, encode_payload(payload), priority or priority_of(stream))
            for stream, payload, priority in items
        ]
        results = await self.spool.append_many(requests)
        for request, result in zip(requests, results, strict=True):
            if not result.stored:
                self.refused += 1
                _log.warning(
                    "spool refused an upstream record",
                    stream=request.stream,
                    priority=request.priority.name.lower(),
                    reason=result.refused,
                )
        self.arrived.set()
        return results


async def forward_bus_to_spool(bus: Bus, outbox: Outbox, *, maxsize: int = 1000) -> None:
    """Spool every ``cloud/out/{suffix}`` message under stream ``suffix`` until cancelled.

    The subscription blocks its publishers when full (events are never dropped here); what
    is queued together is appended in one transaction.
    """
    subscription = bus.subscribe(
        OUT_PREFIX + "#", maxsize=maxsize, overflow=OverflowPolicy.BLOCK, name="cloud-link.outbox"
    )
    try:
        async for first in subscription:
            group: list[Message] = [first]
            while len(group) < MAX_GROUP:
                message = subscription.get_nowait()
                if message is None:
                    break
                group.append(message)
            items: list[tuple[str, Any, SpoolPriority | None]] = []
            for message in group:
                stream = message.topic[len(OUT_PREFIX) :]
                if not valid_stream(stream):
                    _log.warning("cannot send upstream: bad topic suffix", topic=message.topic)
                    continue
                try:
                    items.append((stream, encode_payload(message.payload), None))
                except (TypeError, ValueError) as error:
                    _log.warning(
                        "cannot send upstream: payload is not bytes or JSON",
                        topic=message.topic,
                        error=str(error),
                    )
            if items:
                await outbox.send_many(items)
    finally:
        bus.unsubscribe(subscription)
