"""A link cut again and again, at every step of a connection, leaves no error unread.

The proxy cuts the link at a seeded random moment after each new connection: during the TLS
handshake, the CONNACK, the online status publish, the subscribe (a clean session each time,
so every connection subscribes), the uplink's publishes awaiting their PUBACK, and at last
during the shutdown's offline publish and DISCONNECT. asyncio reports a future whose error
nobody read ("Future exception was never retrieved"), and an error in a loop callback, to the
loop's exception handler: the test installs one that records every report, and there must be
none. Every event still reaches the cloud.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.modules.cloud_link.client import LinkClient
from edge_agent.modules.cloud_link.config import CloudLinkConfig
from edge_agent.simulator.rig.broker import LocalBroker
from fixtures.cloud import (
    LinkProxy,
    Pki,
    cloud_side,
    link_config,
    link_module,
    link_proxy,
    needs_mosquitto,
    running_agent,
)
from fixtures.waiting import wait_until

pytestmark = needs_mosquitto
ROUNDS = 40
EVENTS_PER_ROUND = 20
LATEST_CUT_S = 0.15  # past the online state on this machine: later cuts hit publishes


@pytest.fixture
async def loop_reports() -> AsyncIterator[list[dict[str, Any]]]:
    """Everything reported to the running loop's exception handler during the test."""
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    yield reports
    loop.set_exception_handler(previous)


async def a_new_connection(proxy: LinkProxy) -> None:
    """Until the agent opens another connection through ``proxy``."""
    seen = len(proxy.first_bytes)
    await wait_until(lambda: len(proxy.first_bytes) > seen, timeout=30, what="a new connection")


def described(reports: list[dict[str, Any]]) -> list[str]:
    """One line per report: the message and what it was about."""
    return [
        f"{r.get('message')}: {r.get('exception')!r} "
        f"{r.get('future') or r.get('task') or r.get('handle') or ''}"
        for r in reports
    ]


@pytest.mark.slow
async def test_repeated_cuts_leave_no_unread_error(
    pki: Pki, broker: LocalBroker, tmp_path: Path, loop_reports: list[dict[str, Any]]
) -> None:
    draw = random.Random(7)
    options = {"session_expiry_s": 0, "operation_timeout_s": 2.0}
    seq = 0
    async with (
        link_proxy(broker.port) as proxy,
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", proxy.port, **options)
        ) as supervisor,
    ):
        for _ in range(ROUNDS):
            await a_new_connection(proxy)
            for _ in range(EVENTS_PER_ROUND):
                await supervisor.bus.publish("cloud/out/events", {"seq": seq})
                seq += 1
            await asyncio.sleep(draw.uniform(0, LATEST_CUT_S))
            await proxy.cut()
            await asyncio.sleep(0.05)
            await proxy.restore()
        module = link_module(supervisor)
        assert module.link.state.connects >= 1  # some cuts came after the link was up

        def arrived() -> set[int]:
            return {json.loads(r.payload)["seq"] for r in cloud.on("events")}

        await wait_until(
            lambda: arrived() == set(range(seq)),
            timeout=60,
            what="every event at the cloud",
            details=lambda: f"{seq - len(arrived())} missing",
        )
        # Last: a cut while the agent stops (its offline publish and DISCONNECT).
        await wait_until(lambda: module.link.online, timeout=30, what="the link online")
        for _ in range(EVENTS_PER_ROUND):
            await supervisor.bus.publish("cloud/out/events", {"seq": seq})
            seq += 1

        async def cut_soon() -> None:
            await asyncio.sleep(0.01)
            await proxy.cut()

        cutter = asyncio.create_task(cut_soon())
    await cutter
    # A future reports an unread error when it is collected: collect every dropped client.
    gc.collect()
    await asyncio.sleep(0)
    assert described(loop_reports) == []


async def test_a_drop_in_the_same_read_as_connack_fails_the_connect(
    loop_reports: list[dict[str, Any]],
) -> None:
    """A broker that accepts and hangs up at once: the connect fails, no error is left unread.

    The CONNACK and the end of the stream arrive in one read, so the disconnect is seen before
    the connect returns (the race a cut right after CONNACK hits now and then).
    """

    async def accept_and_hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read(1024)  # the CONNECT
        writer.write(bytes([0x20, 3, 0, 0, 0]))  # MQTT 5 CONNACK: success, no properties
        await writer.drain()
        writer.transport.abort()

    server = await asyncio.start_server(accept_and_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = CloudLinkConfig.model_validate({"host": "127.0.0.1", "port": port, "tls": False})
    failures = []
    async with server:
        for _ in range(10):
            client = LinkClient(config, "veh-1", None)
            try:
                with pytest.raises(aiomqtt.MqttError) as failed:
                    await client.__aenter__()
                failures.append(str(failed.value))
            finally:
                client.abort()
            del client
    gc.collect()
    await asyncio.sleep(0)
    assert failures == ["connection lost right after CONNACK"] * 10
    assert described(loop_reports) == []


def unconnected_client() -> LinkClient:
    """A client for a port nothing listens on; the tests call paho's callbacks themselves."""
    config = CloudLinkConfig.model_validate({"host": "127.0.0.1", "port": 9, "tls": False})
    return LinkClient(config, "veh-1", None)


async def test_a_socket_closed_before_the_loop_adds_its_reader_is_left_alone(
    loop_reports: list[dict[str, Any]],
) -> None:
    """paho opens the socket in a worker thread; the loop adds its reader later.

    By then the socket may be closed (a link cut during the connect) and its number reused by
    another connection, whose reader the dead one's would replace. Seen at 2,000 vehicles.
    """
    loop = asyncio.get_running_loop()
    client = unconnected_client()
    opened, peer = socket.socketpair()
    number = opened.fileno()
    client._on_socket_open(client._client, None, opened)  # queued for the loop, as from paho
    opened.close()
    reused, other_peer = socket.socketpair()  # the lowest free number: usually ``number``
    try:
        await asyncio.sleep(0)  # one loop iteration: the queued registration has run
        assert not loop.remove_reader(number), "a reader was added for a closed socket"
        assert not loop.remove_reader(reused.fileno())
    finally:
        for end in (peer, reused, other_peer):
            end.close()
        client.abort()
    assert described(loop_reports) == []


async def test_a_disconnect_after_an_abandoned_connect_is_ignored(
    loop_reports: list[dict[str, Any]],
) -> None:
    """The connect timed out (its future cancelled); paho reports the drop afterwards."""
    client = unconnected_client()
    client._connected.cancel()
    client._on_disconnect(
        client._client,
        None,
        paho.DisconnectFlags(is_disconnect_packet_from_server=False),
        ReasonCode(PacketTypes.DISCONNECT, "Unspecified error"),
    )
    client.abort()
    await asyncio.sleep(0)
    assert described(loop_reports) == []


async def test_an_error_set_after_abort_is_not_left_unread(
    loop_reports: list[dict[str, Any]],
) -> None:
    """A read callback the loop had queued before the close may still end the connection."""
    client = unconnected_client()
    client._connected.set_result(None)
    client.abort()
    client._disconnected.set_exception(aiomqtt.MqttCodeError(7, "Unexpected disconnection"))
    await asyncio.sleep(0)
    del client
    gc.collect()
    await asyncio.sleep(0)
    assert described(loop_reports) == []
