"""A half-open link (the broker stops answering, nothing is closed) is noticed within the
keepalive budget, and no step waits without a time limit: reconnect attempts into the dead
link fail within the connect timeout, and nothing is lost once it answers again."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from edge_agent.bench.broker import LocalBroker
from fixtures.cloud import (
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
KEEPALIVE_S = 1
# paho sends PINGREQ after one keepalive of silence and gives up after another; its timer
# runs once a second.
BUDGET_S = 2 * KEEPALIVE_S + 1.0


async def test_half_open_link_is_noticed_within_the_keepalive_budget(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    options = {"keepalive_s": KEEPALIVE_S, "connect_timeout_s": 1.0, "operation_timeout_s": 2.0}
    async with (
        link_proxy(broker.port) as proxy,
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", proxy.port, **options)
        ) as supervisor,
    ):
        module = link_module(supervisor)
        await until(lambda: link_state(supervisor) == "online", 10)
        await asyncio.sleep(0.3)  # the link is idle: only the keepalive can notice
        proxy.freeze()
        frozen_at = time.monotonic()
        await until(lambda: link_state(supervisor) == "offline", BUDGET_S + 2.0)
        noticed_s = time.monotonic() - frozen_at
        assert noticed_s <= BUDGET_S + 0.5, noticed_s

        # While the link stays dead, records keep coming and every reconnect attempt (TCP
        # is accepted, TLS never answers) ends within the connect timeout.
        for seq in range(10):
            await supervisor.bus.publish("cloud/out/events", {"seq": seq})
        attempt = module.link.state.attempt
        started = time.monotonic()
        await until(lambda: module.link.state.attempt >= attempt + 2, 10, "two more attempts")
        assert time.monotonic() - started < 2 * (1.0 * 3 + 1) + 1  # each bounded
        assert "connect failed" in module.link.state.reason
        assert supervisor.runners["cloud-link"].state.value == "running"

        proxy.thaw()
        await until(lambda: link_state(supervisor) == "online", 10)
        await until(lambda: len(cloud.on("events")) >= 10, 10)
        assert sorted(json.loads(r.payload)["seq"] for r in cloud.on("events")) == list(range(10))


async def test_publishes_into_a_dead_link_time_out_and_are_sent_again(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    # A long keepalive: here the PUBACK timeout has to notice the dead link.
    options = {"keepalive_s": 30, "operation_timeout_s": 1.0, "connect_timeout_s": 1.0}
    async with (
        link_proxy(broker.port) as proxy,
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", proxy.port, **options)
        ) as supervisor,
    ):
        await until(lambda: link_state(supervisor) == "online", 10)
        proxy.freeze()
        frozen_at = time.monotonic()
        await supervisor.bus.publish("cloud/out/events", {"seq": 0})
        await until(lambda: link_state(supervisor) == "offline", 5)
        assert time.monotonic() - frozen_at < 1.0 + 1.0
        assert "timed out" in link_module(supervisor).link.state.reason.lower()
        proxy.thaw()
        await until(lambda: cloud.on("events"), 10)
        assert json.loads(cloud.on("events")[0].payload) == {"seq": 0}
