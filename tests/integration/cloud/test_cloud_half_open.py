"""A half-open link (the broker stops answering, nothing is closed) is noticed by the MQTT
keepalive, and no step waits without a time limit: reconnect attempts into the dead link fail
at the connect timeout, and nothing is lost once it answers again.

The tests check which timer noticed (the reason the link gives), not how many seconds it took:
a loaded machine stretches seconds, and without the keepalive a half-open link would look
alive until TCP gave up, many minutes later.
"""

from __future__ import annotations

import json
from pathlib import Path

from edge_agent.simulator.rig.broker import LocalBroker
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
from fixtures.waiting import wait_until

pytestmark = needs_mosquitto
# paho sends PINGREQ after one keepalive of silence and gives up after another (its timer
# runs once a second): the dead link is noticed about 3 s after it died.
KEEPALIVE_S = 1


async def test_half_open_link_is_noticed_by_the_keepalive(
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
        await wait_until(lambda: link_state(supervisor) == "online", what="the link online")

        async def idle() -> bool:
            stats = await module.spool.stats()
            return bool(cloud.on("state/reported")) and stats.records == 0

        # Once the reported state is through and the spool is empty, only the keepalive can
        # notice the link die: no publish is waiting for its PUBACK.
        await wait_until(idle, what="the link idle")
        proxy.freeze()
        await wait_until(
            lambda: link_state(supervisor) == "offline", timeout=30, what="the dead link noticed"
        )
        assert "Keep alive timeout" in module.link.state.reason

        # While the link stays dead, records keep coming and every reconnect attempt (TCP
        # is accepted, TLS never answers) ends within the connect timeout.
        for seq in range(10):
            await supervisor.bus.publish("cloud/out/events", {"seq": seq})
        attempt = module.link.state.attempt
        await wait_until(
            lambda: module.link.state.attempt >= attempt + 2, timeout=30, what="two more attempts"
        )
        assert "connect failed" in module.link.state.reason
        assert "timed out" in module.link.state.reason  # the TLS handshake's limit ended it
        assert supervisor.runners["cloud-link"].state.value == "running"

        proxy.thaw()
        await wait_until(lambda: link_state(supervisor) == "online", what="the link online again")
        await wait_until(lambda: len(cloud.on("events")) >= 10, what="the ten events at the cloud")
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
        await wait_until(lambda: link_state(supervisor) == "online", what="the link online")
        proxy.freeze()
        await supervisor.bus.publish("cloud/out/events", {"seq": 0})
        # Well before the keepalive (30 s) could notice, the PUBACK timeout (1 s) does.
        await wait_until(
            lambda: link_state(supervisor) == "offline", timeout=20, what="the dead link noticed"
        )
        assert "timed out" in link_module(supervisor).link.state.reason.lower()
        proxy.thaw()
        await wait_until(lambda: cloud.on("events"), what="the event sent again after the thaw")
        assert json.loads(cloud.on("events")[0].payload) == {"seq": 0}
