"""Store and forward against a real mosquitto: offline-first, broker crashes, long cuts, budgets.

Each record carries its sequence number; the cloud side proves that none is lost, that a
record seen twice carried the same message id both times, and that first arrivals are in
order per stream.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from edge_agent.bus import Bus
from edge_agent.clock import ManualClock
from edge_agent.simulator.rig.broker import LocalBroker, free_port
from fixtures.clock import next_sleep, wake_next_sleeper
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
from fixtures.waiting import wait_until

pytestmark = needs_mosquitto
STREAM = "telemetry/chassis"


async def produce(
    bus: Bus, first: int, count: int, pause_s: float = 0.0, stream: str = STREAM, burst: int = 1
) -> None:
    """Records ``first`` to ``first + count - 1``; with ``pause_s``, paced like a drive."""
    for seq in range(first, first + count):
        await bus.publish(f"cloud/out/{stream}", {"seq": seq})
        if pause_s and seq % burst == 0:
            await asyncio.sleep(pause_s)  # the scenario: records keep coming while things break


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


# These tests drive the reconnect backoff itself, so the return probe (which reconnects at
# once when the broker becomes reachable, test_cloud_reconnect_probe.py) is off here.


async def test_agent_starts_and_spools_without_a_broker_then_delivers(
    pki: Pki, tmp_path: Path, manual_clock: ManualClock
) -> None:
    port = free_port()  # nothing listens here yet
    async with running_agent(
        tmp_path / "agent",
        "veh-1",
        link_config(pki, "veh-1", port, reconnect_probe_interval_s=0),
        clock=manual_clock,
    ) as supervisor:
        link_states = supervisor.bus.subscribe("cloud/link", maxsize=100)
        await produce(supervisor.bus, 0, 50)
        module = link_module(supervisor)
        for retry in (2, 3):
            await wake_next_sleeper(manual_clock, what=f"the link waiting for retry {retry}")
        await wait_until(lambda: module.link.state.attempt == 3, what="the third attempt")
        await next_sleep(manual_clock, what="the third attempt failed")
        assert link_state(supervisor) == "offline"
        message = await asyncio.wait_for(link_states.get(), 5)
        assert message.payload["state"] == "offline"
        await wait_until(
            lambda: "link" in supervisor.snapshot()["modules"]["cloud-link"]["details"],
            what="link details in the health snapshot",
        )
        details = supervisor.snapshot()["modules"]["cloud-link"]["details"]
        assert details["link"]["state"] == "offline"
        assert "connect failed" in details["link"]["reason"]
        assert (await module.spool.stats()).records >= 50  # kept while offline
        broker = LocalBroker(tmp_path / "broker", tls=pki.broker_tls(), port=port)
        broker.start()
        try:
            async with cloud_side(pki, port) as cloud:
                # The next retry comes once the cloud side listens (the broker keeps nothing
                # for a subscriber it has not seen yet).
                await wake_next_sleeper(manual_clock, what="the link waiting for retry 4")
                await wait_until(lambda: link_state(supervisor) == "online", what="the link online")
                await wait_until(
                    lambda: delivered(cloud, 50), what="the 50 spooled records at the cloud"
                )
                check_delivery(cloud, 50)
        finally:
            broker.stop()


def received_seqs(cloud: CloudSide, stream: str = STREAM) -> set[int]:
    return {json.loads(r.payload)["seq"] for r in cloud.on(stream)}


async def caught_up(cloud: CloudSide, marker: str) -> None:
    """Until the cloud side has everything the broker held for it when this was called.

    A marker published now joins the end of the broker's queue for the cloud side
    (mosquitto delivers to a subscriber in the order messages reached it), so once the
    marker is back, so is every record the broker had before it.
    """
    await cloud.publish(f"vehicles/test/markers/{marker}", marker.encode())
    await wait_until(
        lambda: cloud.on(f"markers/{marker}"), timeout=10, what=f"marker {marker!r} back"
    )


async def test_broker_killed_mid_stream_loses_nothing(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    total, window = 600, 32
    options = {"keepalive_s": 10, "operation_timeout_s": 10.0, "inflight_window": window}
    async with (
        link_proxy(broker.port) as proxy,
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent",
            "veh-1",
            link_config(pki, "veh-1", proxy.port, reconnect_probe_interval_s=0, **options),
        ) as supervisor,
    ):
        module = link_module(supervisor)
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
        )
        broker.save()  # both sessions (and their subscriptions) survive the crash
        half = total // 2
        first_half = asyncio.create_task(produce(supervisor.bus, 0, half, pause_s=0.005, burst=20))
        await wait_until(
            lambda: len(received_seqs(cloud)) >= 150, timeout=10, what="first records through"
        )
        # The broker goes on receiving (and passing on) records, but its PUBACKs no longer
        # reach the agent: a full window is in flight when the broker is killed. Letting
        # the cloud side catch up first keeps the broker's own loss (it holds queued QoS 1
        # messages in RAM only) out of what this test measures.
        proxy.freeze(up=False, down=True)
        await first_half
        # The drive goes on; none of what comes now can be confirmed, so the window fills
        # however far the uplink had got with the first half (a fast one: all of it).
        producer = asyncio.create_task(
            produce(supervisor.bus, half, total - half, pause_s=0.005, burst=20)
        )
        await wait_until(lambda: module.uplink.inflight == window, timeout=10, what="window full")
        await caught_up(cloud, "before-the-kill")
        assert received_seqs(cloud) == set(range(len(received_seqs(cloud)))), "a gap"
        broker.kill()  # SIGKILL: no goodbye, in-flight PUBACKs lost for good
        await wait_until(
            lambda: link_state(supervisor) == "offline", timeout=10, what="the link offline"
        )
        proxy.thaw()
        attempt = module.link.state.attempt
        await wait_until(
            lambda: module.link.state.attempt > attempt,
            timeout=10,
            what="a reconnect attempt while the broker is down",
        )
        broker.start()
        await producer
        await wait_until(
            lambda: delivered(cloud, total), timeout=20, what="every record after the restart"
        )
        assert module.link.state.connects >= 2
        result = check_delivery(cloud, total)
        # The records whose PUBACK was lost came again, each with its first message id.
        assert result["duplicates"] >= window

        async def spool_empty() -> bool:
            return (await module.spool.stats()).records == 0

        # Each record leaves the spool once its PUBACK is in (acks are grouped, a moment
        # after the publish ends).
        await wait_until(spool_empty, timeout=10, what="every record acked out of the spool")


async def test_link_cut_for_minutes_backs_off_and_recovers(
    pki: Pki, broker: LocalBroker, tmp_path: Path, manual_clock: ManualClock
) -> None:
    options = {"reconnect_initial_s": 1.0, "reconnect_max_s": 30.0}
    async with (
        link_proxy(broker.port) as proxy,
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent",
            "veh-1",
            link_config(pki, "veh-1", proxy.port, reconnect_probe_interval_s=0, **options),
            clock=manual_clock,
        ) as supervisor,
    ):
        await wait_until(lambda: link_state(supervisor) == "online", what="the link online")
        await produce(supervisor.bus, 0, 20)
        await wait_until(lambda: delivered(cloud, 20), what="the first 20 records at the cloud")
        await proxy.cut()
        await wait_until(lambda: link_state(supervisor) == "offline", what="the cut noticed")
        await produce(supervisor.bus, 20, 100)  # the drive goes on while the link is down
        # Three minutes of module time, one retry after the other: each waits a capped
        # exponential delay (1, 2, 4, ... 30 s), shortened by up to half (jitter). A retry
        # loop without backoff would make hundreds of attempts.
        delays: list[float] = []
        while sum(delays) < 180.0:
            delays.append(await wake_next_sleeper(manual_clock, what="the link's next retry"))
            assert link_state(supervisor) == "offline"
        ceilings = [min(30.0, 2.0**n) for n in range(len(delays))]
        assert all(c / 2 <= d <= c for c, d in zip(ceilings, delays, strict=True)), delays
        assert 10 <= len(delays) <= 16, delays  # all at their ceiling, all halved
        # The network returns while the link waits for its next retry: it is back at that
        # retry, at most one capped delay (30 s) later.
        assert await next_sleep(manual_clock, what="the link waiting to retry") <= 30.0
        await proxy.restore()
        await wake_next_sleeper(manual_clock, what="the retry after the restore")
        await wait_until(lambda: link_state(supervisor) == "online", what="the link back online")
        await wait_until(lambda: delivered(cloud, 120), what="all 120 records at the cloud")
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
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
        )
        await produce(supervisor.bus, 0, 10)
        await produce(supervisor.bus, 0, 5, stream="events")
        await wait_until(
            lambda: delivered(cloud, 5, "events"), timeout=10, what="the five events at the cloud"
        )
        module = link_module(supervisor)

        async def telemetry_waiting_unleased() -> bool:
            stats = await module.spool.stats()
            return stats.by_priority["telemetry_low"].records == 10 and stats.leased == 0

        # With nothing leased, nothing is in flight: the telemetry waits in the spool...
        await wait_until(telemetry_waiting_unleased, what="the telemetry held in the spool")
        assert cloud.on(STREAM) == []  # ...held back on the metered link...
        held = module.link_summary()
        assert held["active"] == "cellular"
        assert "telemetry_low" in held["held_back"]
        await supervisor.bus.publish("cloud/network", {"link": "wifi"})
        await wait_until(
            lambda: delivered(cloud, 10), timeout=10, what="the held-back telemetry sent on Wi-Fi"
        )  # ...and sent on depot Wi-Fi
        check_delivery(cloud, 10)
        check_delivery(cloud, 5, "events")
