"""The cloud stand-in's MQTT side: consume a fleet's upstream topics, send desired state, commands.

The consumer subscribes with QoS 1 on a persistent session (what arrives while it is down
waits in the broker) and sends each PUBACK only after the message is committed to the store:
nothing acknowledged can be lost by a crash of the stand-in. With a share group it
subscribes through ``$share/{group}/...``: the broker (or a broker cluster) then hands each
message to one member of the group, so consumers scale out by just starting more of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.modules.cloud_link.client import MESSAGE_ID_PROPERTY
from edge_agent.simulator.cloud_store import CloudStore, Incoming

UPSTREAM = (
    "telemetry/#",
    "events",
    "state/reported",
    "status",
    "commands/+/reply",
    "ota/status",
    "catalog/+",
    "diag/#",  # the diagnostics module's DTC events
)
MAX_GROUP = 500


@dataclass(frozen=True, slots=True)
class BrokerAccess:
    """Where the broker is and who we are (the cloud identity's certificate, or plaintext)."""

    host: str
    port: int
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    mqtt5: bool = True
    """MQTT 5 (the default); False speaks 3.1.1, for brokers without 5 (NATS 2.9: docs/fleet.md)."""

    def tls(self) -> ssl.SSLContext | None:
        """A verifying client TLS context, or None for a plaintext bench broker."""
        if self.ca_file is None:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if self.cert_file is not None:
            context.load_cert_chain(str(self.cert_file), str(self.key_file or self.cert_file))
        return context

    def client(
        self, identifier: str, *, persistent: bool = True, manual_ack: bool = False
    ) -> aiomqtt.Client:
        """An MQTT client (v5 unless ``mqtt5`` is off); a persistent session unless told not."""
        if self.mqtt5:
            connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            connect.SessionExpiryInterval = 86_400 if persistent else 0
            session: dict[str, Any] = {
                "protocol": aiomqtt.ProtocolVersion.V5,
                "clean_start": not persistent,
                "properties": connect,
            }
        else:
            session = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": not persistent}
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=identifier,
            **session,
            tls_context=self.tls(),
            keepalive=10,
            timeout=10,
            max_queued_incoming_messages=10_000,
        )
        # PUBACK after the store commit, not on receipt (aiomqtt keeps paho's switch private).
        client._client.manual_ack_set(manual_ack)
        return client


def upstream_filters(fleet: str = "+", share_group: str | None = None) -> list[str]:
    """The topic filters of a fleet's upstream traffic (``fleet``: one vehicle id, or ``+``)."""
    filters = [f"vehicles/{fleet}/{suffix}" for suffix in UPSTREAM]
    if share_group:
        filters = [f"$share/{share_group}/{topic}" for topic in filters]
    return filters


def _message_id(message: aiomqtt.Message) -> str | None:
    for key, value in getattr(message.properties, "UserProperty", None) or []:
        if key == MESSAGE_ID_PROPERTY:
            return str(value)
    return None


@dataclass
class ConsumerStats:
    """What the consumer did since it started."""

    outcomes: dict[str, int] = field(default_factory=dict)
    connects: int = 0
    subscribed: int = 0  # connects whose subscriptions the broker confirmed (SUBACK)
    last_error: str = ""


async def consume(
    store: CloudStore,
    access: BrokerAccess,
    *,
    client_id: str,
    fleet: str = "+",
    share_group: str | None = None,
    stats: ConsumerStats | None = None,
    on_stored: Callable[[list[str]], None] | None = None,
) -> None:
    """Consume until cancelled, reconnecting (1 s apart) while the broker is away."""
    stats = stats or ConsumerStats()
    while True:
        try:
            async with access.client(client_id, manual_ack=True) as client:
                stats.connects += 1
                filters = upstream_filters(fleet, share_group)
                await client.subscribe([(topic, 1) for topic in filters])
                stats.subscribed += 1
                await _pump(client, store, stats, on_stored)
        except aiomqtt.MqttError as error:
            stats.last_error = str(error)
            await asyncio.sleep(1.0)


async def _pump(
    client: aiomqtt.Client,
    store: CloudStore,
    stats: ConsumerStats,
    on_stored: Callable[[list[str]], None] | None,
) -> None:
    queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue(maxsize=MAX_GROUP * 2)

    async def receive() -> None:
        async for message in client.messages:
            await queue.put(message)
        raise aiomqtt.MqttError("message stream ended")

    asked: set[tuple[str, str]] = set()
    async with asyncio.TaskGroup() as group:
        group.create_task(receive())
        while True:
            messages = [await queue.get()]
            while len(messages) < MAX_GROUP and not queue.empty():
                messages.append(queue.get_nowait())
            incoming = [Incoming(str(m.topic), bytes(m.payload), _message_id(m)) for m in messages]
            outcomes = await asyncio.to_thread(store.ingest_many, incoming)
            for message in messages:  # in arrival order, as MQTT wants PUBACKs
                if message.qos:
                    client._client.ack(message.mid, message.qos)
            acks, store.acks = store.acks, []
            for topic, payload in acks:  # catalogues are committed: tell their vehicles
                await client.publish(topic, payload, qos=1)
            for vehicle, digest in sorted(store.wanted - asked):
                # Batches wait for this catalogue: subscribing again to its topic makes the
                # broker hand over its retained copy, if the vehicle ever published it; and
                # the vehicle is asked to publish it again (by hash), in case it did not or
                # the broker lost it.
                asked.add((vehicle, digest))
                await client.subscribe(f"vehicles/{vehicle}/catalog/{digest}", qos=1)
                await client.publish(f"vehicles/{vehicle}/catalog/{digest}/request", b"", qos=1)
            for outcome in outcomes:
                stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
            if on_stored is not None:
                on_stored(outcomes)


# -- sending -----------------------------------------------------------------------------------


async def send_desired(access: BrokerAccess, vehicle: str, document: dict[str, Any]) -> None:
    """Publish ``document`` as ``vehicle``'s desired state (retained, QoS 1)."""
    async with access.client(f"cloud-desired-{uuid.uuid4().hex[:8]}", persistent=False) as client:
        await client.publish(
            f"vehicles/{vehicle}/state/desired", json.dumps(document).encode(), qos=1, retain=True
        )


async def send_ota_job(access: BrokerAccess, vehicle: str, job: dict[str, Any]) -> None:
    """Publish an OTA job for ``vehicle`` (QoS 1; waits in its session while it is offline)."""
    async with access.client(f"cloud-ota-{uuid.uuid4().hex[:8]}", persistent=False) as client:
        await client.publish(f"vehicles/{vehicle}/ota/jobs", json.dumps(job).encode(), qos=1)


async def send_command(
    access: BrokerAccess,
    vehicle: str,
    name: str,
    args: dict[str, Any] | None = None,
    *,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Send command ``name`` and wait for its reply (raises TimeoutError when none comes).

    The request expires in the broker after ``timeout_s`` (MQTT v5 message expiry), so a
    vehicle that comes back later does not run a command nobody waits for any more.
    """
    command_id = uuid.uuid4().hex
    reply_topic = f"vehicles/{vehicle}/commands/{name}/reply"
    properties: Properties | None = None
    if access.mqtt5:  # 3.1.1 has no expiry: the request's own timeout_s is all there is
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.MessageExpiryInterval = max(1, round(timeout_s))
    request = {"id": command_id, "args": args or {}, "timeout_s": timeout_s}
    async with access.client(f"cloud-cmd-{command_id[:8]}", persistent=False) as client:
        await client.subscribe(reply_topic, qos=1)
        await client.publish(
            f"vehicles/{vehicle}/commands/{name}",
            json.dumps(request).encode(),
            qos=1,
            properties=properties,
        )
        async with asyncio.timeout(timeout_s + 1.0):
            async for message in client.messages:
                with contextlib.suppress(ValueError, TypeError):
                    reply = json.loads(message.payload)
                    if isinstance(reply, dict) and reply.get("id") == command_id:
                        return reply
    raise TimeoutError(f"no reply to {name} from {vehicle}")
