"""The fleet's JetStream layout: the stream vehicles' QoS 1 messages land in, and its consumer.

Why the stream is NATS MQTT's own ``$MQTT_msgs`` (docs/fleet.md, "What a PUBACK means"): in
nats-server 2.9, a QoS 1 PUBLISH from an MQTT client is first handed to NATS subscribers
(a stream of ours capturing ``vehicles.>`` would get it this way, *asynchronously*: no
wait for its store or replication), then stored synchronously into ``$MQTT_msgs`` as
``$MQTT.msgs.<subject>``; the PUBACK goes out only after that store succeeded (a failed
store closes the vehicle's connection and sends no PUBACK). So only ``$MQTT_msgs`` turns a
PUBACK into "stored, replicated": the workers consume it directly.

``$MQTT_msgs`` has interest retention: a message is kept until every consumer interested in
its subject acknowledged it, and dropped at once if no consumer is interested. The durable
consumer :data:`CONSUMER` (filter ``$MQTT.msgs.vehicles.>``) is that interest, so
:func:`ensure_streams` must run before vehicles send (the workers call it at start; it is
idempotent). Bounds and policy, stated: at most ``max_bytes`` (default 1 GiB) and
``max_age`` (default 7 days) in the stream, *discard new*: when full, the store fails, the
vehicle gets no PUBACK and keeps the record in its spool (back pressure, nothing lost); a
message nobody consumed for ``max_age`` is dropped (alert long before: ``num_pending``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError, ServiceUnavailableError

MESSAGES_STREAM = "$MQTT_msgs"
"""The stream NATS MQTT stores QoS 1 messages in (its name is fixed by nats-server)."""
MESSAGES_SUBJECT_PREFIX = "$MQTT.msgs."
UPSTREAM_FILTER = MESSAGES_SUBJECT_PREFIX + "vehicles.>"
CONSUMER = "fleet-workers"
"""The durable pull consumer every worker shares."""

REPLICAS = 3
MAX_BYTES = 1 << 30
MAX_AGE_S = 7 * 86_400.0
MAX_MESSAGE_BYTES = 4 << 20
ACK_WAIT_S = 30.0
"""How long a fetched message stays with one worker without an ack or a progress signal."""
MAX_DELIVER = 20
"""Deliveries of one message; the worker parks it on the last one (it is never stuck)."""
MAX_ACK_PENDING = 4096
"""Messages out with workers at once, over all of them (flow control)."""

API_TIMEOUT_S = 10.0
"""One JetStream API request (a replicated stream create waits for its Raft group)."""
SETUP_DEADLINE_S = 90.0
"""How long :func:`ensure_streams` keeps retrying while the cluster elects its leaders."""

_TRANSIENT = (NatsTimeout, NoRespondersError, ServiceUnavailableError, TimeoutError)


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """The bounds of the upstream stream (see the module docstring for the policy)."""

    replicas: int = REPLICAS
    max_bytes: int = MAX_BYTES
    max_age_s: float = MAX_AGE_S
    max_message_bytes: int = MAX_MESSAGE_BYTES
    ack_wait_s: float = ACK_WAIT_S
    max_deliver: int = MAX_DELIVER


async def ensure_streams(
    nc: NatsClient,
    limits: StreamLimits | None = None,
    *,
    deadline_s: float = SETUP_DEADLINE_S,
    on_retry: Callable[[BaseException], None] | None = None,
    api_timeout_s: float = API_TIMEOUT_S,
) -> None:
    """Create or adjust ``$MQTT_msgs`` and create the workers' durable consumer; idempotent.

    NATS MQTT creates ``$MQTT_msgs`` itself when the first MQTT client connects, and
    tolerates finding it already there; either way this sets our bounds on it. An existing
    consumer is left as it is (an operator may have tuned it; the first creator's settings
    stand).

    A cluster that has just started (or lost a node) answers JetStream requests only once
    its meta leader is elected, and a replicated create waits for the stream's own group: a
    request that times out or finds JetStream unavailable is retried, with a pause growing
    to 2 s, until ``deadline_s``; then the last error is raised. One request waits at most
    ``api_timeout_s`` (and never past the deadline). Every step is idempotent,
    so a create that timed out but happened is found by the next try. ``on_retry`` hears
    each error that is retried (the worker keeps it as its last error).
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    pause = 0.2
    while True:
        try:
            timeout = max(0.5, min(api_timeout_s, end - loop.time()))
            await _ensure_once(nc, limits or StreamLimits(), timeout)
            return
        except _TRANSIENT as error:
            if loop.time() + pause >= end:
                raise
            if on_retry is not None:
                on_retry(error)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 2.0)


async def _ensure_once(nc: NatsClient, limits: StreamLimits, timeout_s: float) -> None:
    """One pass of :func:`ensure_streams`; raises what the cluster answered."""
    jsm = nc.jetstream(timeout=timeout_s)
    try:
        info = await jsm.stream_info(MESSAGES_STREAM)
    except NotFoundError:
        await jsm.add_stream(
            StreamConfig(
                name=MESSAGES_STREAM,
                subjects=[MESSAGES_SUBJECT_PREFIX + ">"],
                retention=RetentionPolicy.INTEREST,
                storage=StorageType.FILE,
                num_replicas=limits.replicas,
                max_bytes=limits.max_bytes,
                max_age=limits.max_age_s,
                max_msg_size=limits.max_message_bytes,
                discard=DiscardPolicy.NEW,
            )
        )
    else:
        config = info.config
        wanted = (limits.max_bytes, limits.max_age_s, limits.max_message_bytes, DiscardPolicy.NEW)
        have = (config.max_bytes, config.max_age, config.max_msg_size, config.discard)
        if have != wanted:
            config.max_bytes = limits.max_bytes
            config.max_age = limits.max_age_s
            config.max_msg_size = limits.max_message_bytes
            config.discard = DiscardPolicy.NEW
            await jsm.update_stream(config)
    try:
        await jsm.consumer_info(MESSAGES_STREAM, CONSUMER)
    except NotFoundError:
        pass
    else:
        return
    await jsm.add_consumer(
        MESSAGES_STREAM,
        ConsumerConfig(
            durable_name=CONSUMER,
            filter_subject=UPSTREAM_FILTER,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=limits.ack_wait_s,
            max_deliver=limits.max_deliver,
            max_ack_pending=MAX_ACK_PENDING,
            max_waiting=512,
        ),
    )


async def pending(nc: NatsClient) -> tuple[int, int]:
    """(messages not yet delivered, delivered but not acknowledged) of the workers' consumer."""
    info = await nc.jetstream().consumer_info(MESSAGES_STREAM, CONSUMER)
    return int(info.num_pending or 0), int(info.num_ack_pending or 0)
