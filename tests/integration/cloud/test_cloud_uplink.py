"""Store and forward against a real mosquitto: offline-first, broker crashes, long cuts, budgets.

Each record carries its sequence number; the cloud side proves that none is lost, that a
record seen twice carried the same message id both times, and that first arrivals are in
order per stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from edge_agent.bench.broker import LocalBroker, free_port
from edge_agent.bus import Bus
from fixtures.cloud import (
    CloudSide,
    Pki,
    cloud_side,
    link_config,
    link_module,
    link_proxy,
    link_state,
    needs_mosquitto,
    running_agent,
)
from fixtures.waiting import until

pytestmark = needs_mosquitto
STREAM = "telemetry/chassis"


class FastClock:
    """Module time running ``factor`` times faster than real time (backoff, budgets)."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._start = time.monotonic()

    def monotonic(self) -> float:
        return self._start + (time.monotonic() - self._start) * self.factor

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.factor)


async def produce(
    bus: Bus, first: int, count: int, pause_s: float = 0.0, stream: str = STREAM, burst: int = 1
) -> None:
    for seq in range(first, first + count):
        await bus.publish(f"cloud/out/{stream}", {"seq": seq})
        if pause_s and seq % burst == 0:
            await asyncio.sleep(pause_s)


def check_delivery(cloud: CloudSide, expected: int, stream: str = STREAM) -> dict[str, Any]:
    """No record lost; duplicates only with the same id; first arrivals in order."""
    ids: dict[int, set[str | None]] = {}
    first_seen: list[int] = []
    for received in cloud.on(stream):
        seq = json.loads(received.payload)["seq"]
        if seq not in ids:
            first_seen.append(seq)
        ids.setdefault(seq, set()).add(received.message_id)
    assert sorted(ids) == list(range(expected)), "a record was lost"
    assert all(len(found) == 1 and None not in found for found in ids.values())
    assert len({next(iter(found)) for found in ids.values()}) == expected
    assert first_seen == sorted(first_seen), "out of order within the stream"
    return {"duplicates": len(cloud.on(stream)) - expected}


def delivered(cloud: CloudSide, expected: int, stream: str = STREAM) -> bool:
    return len({json.loads(r.payload)["seq"] for r in cloud.on(stream)}) >= expected


async def test_agent_starts_and_spools_without_a_broker_then_delivers(
    pki: Pki, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here yet
    async with running_agent(
        tmp_path / "agent", "veh-1", link_config(pki, "veh-1", port)
    ) as supervisor:
        link_states = supervisor.bus.subscribe("cloud/link", maxsize=100)
        await produce(supervisor.bus, 0, 50)
        module = link_module(supervisor)
        await until(lambda: module.link.state.attempt >= 3, 10, "retrying")
        assert link_state(supervisor) == "offline"
        message = await asyncio.wait_for(link_states.get(), 5)
        assert message.payload["state"] == "offline"
        await until(lambda: "link" in supervisor.snapshot()["modules"]["cloud-link"]["details"], 5)
        details = supervisor.snapshot()["modules"]["cloud-link"]["details"]
        assert details["link"]["state"] == "offline"
        assert "connect failed" in details["link"]["reason"]
        assert (await module.spool.stats()).records >= 50  # kept while offline
        broker = LocalBroker(tmp_path / "broker", tls=pki.broker_tls(), port=port)
        broker.start()
        try:
            async with cloud_side(pki, port) as cloud:
                await until(lambda: link_state(supervisor) == "online", 10)
                await until(lambda: delivered(cloud, 50), 10)
                check_delivery(cloud, 50)
        finally:
            broker.stop()


def received_seqs(cloud: CloudSide, stream: str = STREAM) -> set[int]:
    return {json.loads(r.payload)["seq"] for r in cloud.on(stream)}


async def settled(cloud: CloudSide, quiet_s: float = 0.5) -> None:
    """Until the cloud has received a gap-free run of records and nothing more for a while."""
    seen, since = -1, time.monotonic()
    while True:
        now_seen = len(received_seqs(cloud))
        if now_seen != seen:
            seen, since = now_seen, time.monotonic()
        elif time.monotonic() - since >= quiet_s and received_seqs(cloud) == set(range(seen)):
            return
        await asyncio.sleep(0.02)


async def test_broker_killed_mid_stream_loses_nothing(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    total, window = 600, 32
    options = {"keepalive_s": 10, "operation_timeout_s": 10.0, "inflight_window": window}
    async with (
        link_proxy(broker.port) as proxy,
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", proxy.port, **options)
        ) as supervisor,
    ):
        module = link_module(supervisor)
        await until(lambda: link_state(supervisor) == "online", 10)
        broker.save()  # both sessions (and their subscriptions) survive the crash
        producer = asyncio.create_task(produce(supervisor.bus, 0, total, pause_s=0.005, burst=20))
        await until(lambda: len(received_seqs(cloud)) >= 150, 10, "first records through")
        # The broker goes on receiving (and passing on) records, but its PUBACKs no longer
        # reach the agent: a full window is in flight when the broker is killed. Waiting
        # for the cloud side to settle first keeps the broker's own loss (it holds queued
        # QoS 1 messages in RAM only) out of what this test measures.
        proxy.freeze(up=False, down=True)
        await until(lambda: module.uplink.inflight == window, 10, "window full")
        await settled(cloud)
        broker.kill()  # SIGKILL: no goodbye, in-flight PUBACKs lost for good
        await until(lambda: link_state(supervisor) == "offline", 10)
        proxy.thaw()
        await asyncio.sleep(0.3)
        broker.start()
        await producer
        await until(lambda: delivered(cloud, total), 20, "every record after the restart")
        assert module.link.state.connects >= 2
        result = check_delivery(cloud, total)
        # The records whose PUBACK was lost came again, each with its first message id.
        assert result["duplicates"] >= window
        await until(lambda: module.uplink.inflight == 0, 5)
        assert (await module.spool.stats()).records == 0  # all removed, after PUBACK


async def test_link_cut_for_minutes_backs_off_and_recovers(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    clock = FastClock(60.0)  # one real second is a minute of module time
    options = {"reconnect_initial_s": 1.0, "reconnect_max_s": 30.0}
    async with (
        link_proxy(broker.port) as proxy,
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent",
            "veh-1",
            link_config(pki, "veh-1", proxy.port, **options),
            clock=clock,
        ) as supervisor,
    ):
        module = link_module(supervisor)
        await until(lambda: link_state(supervisor) == "online", 10)
        await produce(supervisor.bus, 0, 20)
        await until(lambda: delivered(cloud, 20), 10)
        await proxy.cut()
        attempts_before = module.link.state.attempt
        await produce(supervisor.bus, 20, 100)  # the drive goes on while the link is down
        await asyncio.sleep(3.0)  # three minutes of module time
        attempts = module.link.state.attempt - attempts_before
        # Capped exponential backoff (1, 2, 4, ... 30 s, jittered) over 180 s: about ten
        # tries; a retry loop without backoff would make hundreds.
        assert 4 <= attempts <= 30, attempts
        assert link_state(supervisor) == "offline"
        await proxy.restore()
        restored = time.monotonic()
        await until(lambda: link_state(supervisor) == "online", 5)
        assert time.monotonic() - restored < 0.5 + 2.5  # within one capped delay (30 s / 60)
        await until(lambda: delivered(cloud, 120), 10)
        check_delivery(cloud, 120)


async def test_cellular_budget_holds_telemetry_back_but_never_events(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    links = {"cellular": {"budget_bytes": 1, "low_priority_share": 0.0}, "wifi": {}}
    async with (
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent",
            "veh-1",
            link_config(pki, "veh-1", broker.port, links=links, active_link="cellular"),
        ) as supervisor,
    ):
        await until(lambda: link_state(supervisor) == "online", 10)
        await produce(supervisor.bus, 0, 10)
        await produce(supervisor.bus, 0, 5, stream="events")
        await until(lambda: delivered(cloud, 5, "events"), 10)
        await asyncio.sleep(0.3)
        assert cloud.on(STREAM) == []  # held back on the metered link...
        held = link_module(supervisor).link_summary()
        assert held["active"] == "cellular"
        assert "telemetry_low" in held["held_back"]
        await supervisor.bus.publish("cloud/network", {"link": "wifi"})
        await until(lambda: delivered(cloud, 10), 10)  # ...and sent on depot Wi-Fi
        check_delivery(cloud, 10)
        check_delivery(cloud, 5, "events")
