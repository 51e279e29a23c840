"""The connection manager: connect, subscribe, run the uplink and the inbound pump, reconnect.

Offline-first: :meth:`CloudLink.run` never gives up and never blocks the agent; each
connection attempt is bounded (TCP connect, TLS handshake and CONNACK each by
``connect_timeout_s``), and a failed or lost connection is retried after a capped, jittered
exponential backoff measured on the module's clock, cut short when a probe sees the broker
reachable again after it was not (``return_watch.py``). The link state is published on the bus
topic ``cloud/link`` at every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from edge_agent.backoff import Backoff
from edge_agent.bus import Bus, Priority
from edge_agent.clock import Clock
from edge_agent.logs import get_logger
from edge_agent.modules.cloud_link.client import LinkClient, status_payload, tls_context
from edge_agent.modules.cloud_link.config import CloudLinkConfig
from edge_agent.modules.cloud_link.link_state import LinkState, LinkStatus, check_transition
from edge_agent.modules.cloud_link.return_watch import ReturnWatch, tcp_reach
from edge_agent.modules.cloud_link.topics import (
    CATALOG_ACKS,
    CATALOG_REQUESTS,
    COMMANDS,
    LINK_TOPIC,
    OTA_JOBS,
    STATE_DESIRED,
    STATUS,
    inbound,
    vehicle_topic,
)
from edge_agent.modules.cloud_link.uplink import Uplink
from edge_agent.version import __version__

# What the vehicle subscribes to (topic suffixes); commands/+ does not match .../reply.
# catalog/+/ack: the cloud's acknowledgements of the telemetry module's signal catalogues;
# catalog/+/request: the cloud asks for one again (by hash; the telemetry module answers).
SUBSCRIPTIONS = (STATE_DESIRED, f"{COMMANDS}/+", OTA_JOBS, CATALOG_ACKS, CATALOG_REQUESTS)
# A session that lasted this long counts as a success: the next retry starts from the
# initial delay again. Shorter ones (e.g. two agents with the same id kicking each other
# off) keep backing off.
STABLE_SESSION_S = 10.0
_log = get_logger("edge_agent.module.cloud-link")


class CloudLink:
    """Keeps one MQTT connection to the broker for vehicle ``vehicle_id`` (see module doc).

    ``on_connected`` runs after every (re)connect, once subscriptions are in place (the
    module republishes the reported state there); ``on_state`` after every state change.
    """

    def __init__(
        self,
        config: CloudLinkConfig,
        *,
        vehicle_id: str,
        bus: Bus,
        clock: Clock,
        uplink: Uplink,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        on_state: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.vehicle_id = vehicle_id
        self.bus = bus
        self.clock = clock
        self.uplink = uplink
        self.on_connected = on_connected
        self.on_state = on_state
        self.state = LinkStatus(since=time.time())
        self.backoff = Backoff(config.reconnect_initial_s, config.reconnect_max_s, jitter=0.5)
        self.return_watch = ReturnWatch(
            tcp_reach(config.host, config.port, config.reconnect_probe_timeout_s),
            clock,
            config.reconnect_probe_interval_s,
        )
        self.received = 0
        self._stopping = asyncio.Event()
        self._client: LinkClient | None = None
        self._prefix = vehicle_topic(vehicle_id, "")

    # -- state -----------------------------------------------------------------------------

    def _set_state(self, state: LinkState, reason: str, **changes: Any) -> None:
        check_transition(self.state.state, state)
        self.state.state = state
        self.state.reason = reason
        self.state.since = time.time()
        for key, value in changes.items():
            setattr(self.state, key, value)
        self.publish_state()
        if self.on_state is not None:
            self.on_state()

    def publish_state(self, **extra: Any) -> None:
        """Put the current link state on ``cloud/link`` (never waits)."""
        self.bus.publish_nowait(
            LINK_TOPIC, {**self.state.as_dict(), **extra}, priority=Priority.CONTROL
        )

    @property
    def online(self) -> bool:
        """Whether a connection is up right now."""
        return self.state.state is LinkState.ONLINE

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve the session, and reconnect with backoff, until cancelled or stopped."""
        if self.config.tls is False:
            _log.warning(
                "cloud link runs WITHOUT TLS (tls = false): traffic and identity are not "
                "protected; use this only for a local bench",
                host=self.config.host,
                port=self.config.port,
            )
        self.publish_state()
        attempt = 0
        while not self._stopping.is_set():
            attempt += 1
            self.state.attempt = attempt
            started = self.clock.monotonic()
            established = await self._attempt()
            if self._stopping.is_set():
                return
            if established and self.clock.monotonic() - started >= STABLE_SESSION_S:
                attempt = 1
            delay = self.backoff.delay(attempt)
            _log.info(
                "cloud link offline; retrying",
                reason=self.state.reason,
                retry_in_s=round(delay, 2),
                attempt=attempt,
            )
            returned = await self.return_watch.wait(delay)
            self.state.probes = self.return_watch.probes
            if returned:
                self.state.probe_reconnects += 1
                _log.info("cloud link: broker reachable again; reconnecting now")

    async def _attempt(self) -> bool:
        """One connection, start to end; returns whether it got as far as CONNACK."""
        try:
            context = await self._tls()
        except Exception as error:  # a bad file: retried with backoff, the agent runs on
            self._set_state(LinkState.OFFLINE, f"TLS setup: {error}")
            return False
        client = LinkClient(self.config, self.vehicle_id, context)
        try:
            try:
                # Each step inside is bounded already; this only guards against a hang.
                async with asyncio.timeout(self.config.connect_timeout_s * 3 + 1):
                    await client.__aenter__()
            except (aiomqtt.MqttError, TimeoutError, OSError) as error:
                self._set_state(LinkState.OFFLINE, f"connect failed: {_describe(error)}")
                return False
            self._client = client
            try:
                await self._session(client)
                reason = "session ended"
            except* (aiomqtt.MqttError, TimeoutError, OSError) as group:
                reason = "; ".join(sorted({_describe(e) for e in group.exceptions}))
            finally:
                self._client = None
            if self._stopping.is_set():
                reason = "shutdown"
            self._set_state(LinkState.OFFLINE, f"connection lost: {reason}")
            await self._close(client)
            return True
        finally:
            client.abort()  # whatever happened (cancellation too), no socket outlives it

    async def _tls(self) -> ssl.SSLContext | None:
        if self.config.tls is False:
            return None
        return await asyncio.to_thread(tls_context, self.config.tls)

    async def _session(self, client: LinkClient) -> None:
        timeout = self.config.operation_timeout_s
        await client.publish_acked(
            vehicle_topic(self.vehicle_id, STATUS),
            status_payload(LinkState.ONLINE, since=time.time(), agent_version=__version__),
            retain=True,
            timeout_s=timeout,
        )
        if not client.session_present:
            # A new session (first connect, expired, or the broker lost it): subscribe again.
            # With the session kept, the broker still has our subscriptions and queued
            # messages, and re-subscribing would only replay retained ones.
            topics = [(vehicle_topic(self.vehicle_id, suffix), 1) for suffix in SUBSCRIPTIONS]
            reasons = await client.unless_disconnected(client.subscribe(topics, timeout=timeout))
            refused = [
                t
                for (t, _), r in zip(topics, reasons, strict=False)
                if getattr(r, "is_failure", False)
            ]
            if refused:
                raise aiomqtt.MqttError(f"broker refused subscriptions: {', '.join(refused)}")
        self._set_state(
            LinkState.ONLINE,
            "connected",
            session_present=client.session_present,
            connects=self.state.connects + 1,
        )
        _log.info(
            "cloud link online",
            host=self.config.host,
            port=self.config.port,
            session_present=client.session_present,
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(self._receive(client), name="cloud-link.receive")
            group.create_task(self.uplink.run(client, timeout), name="cloud-link.uplink")
            if self.on_connected is not None:
                await self.on_connected()

    async def _receive(self, client: LinkClient) -> None:
        async for message in client.messages:
            topic = str(message.topic)
            if not topic.startswith(self._prefix):
                continue  # not ours (a broker bridging more than the ACL allows)
            self.received += 1
            await self.bus.publish(
                inbound(topic[len(self._prefix) :]),
                bytes(message.payload),
                priority=Priority.CONTROL,
                sender="cloud-link",
            )
        raise aiomqtt.MqttError("message stream ended")

    async def _close(self, client: LinkClient) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await client.__aexit__(None, None, None)
        client.abort()

    async def stop(self) -> None:
        """On shutdown: mark the vehicle offline (retained) and disconnect, within 2 s.

        ``run`` returns after this instead of reconnecting.
        """
        self._stopping.set()
        client = self._client
        if client is None:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await client.publish_acked(
                    vehicle_topic(self.vehicle_id, STATUS),
                    status_payload(LinkState.OFFLINE, reason="shutdown", since=time.time()),
                    retain=True,
                )
        await self._close(client)


def _describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in error.exceptions)
    text = str(error) or type(error).__name__
    if error.__cause__ is not None:  # aiomqtt hides the disconnect reason here
        text += f" ({_describe(error.__cause__)})"
    return text
