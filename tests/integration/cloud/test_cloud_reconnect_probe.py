"""Reconnecting as soon as the broker is reachable again, not a capped backoff later.

A real mosquitto is stopped and started again. The link's backoff is set far longer than the
test waits, so only the reachability probe (modules/cloud_link/return_watch.py) can bring it
back; the test reads the link's own counters. A broker whose port accepts while MQTT fails is
probed once per backoff wait, no more.
"""

from __future__ import annotations

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
# Far beyond the waits below: a reconnect inside them can only come from the probe.
SLOW_BACKOFF = {"reconnect_initial_s": 120.0, "reconnect_max_s": 300.0}


async def test_the_link_is_back_as_soon_as_the_broker_is(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    options = {**SLOW_BACKOFF, "reconnect_probe_interval_s": 0.2}
    async with running_agent(
        tmp_path / "agent", "veh-1", link_config(pki, "veh-1", broker.port, **options)
    ) as supervisor:
        link = link_module(supervisor).link
        await wait_until(
            lambda: link_state(supervisor) == "online",
            timeout=10,
            what='lambda: link_state(supervisor) == "online"',
        )
        broker.stop()
        await wait_until(
            lambda: link_state(supervisor) == "offline",
            timeout=20,
            what='lambda: link_state(supervisor) == "offline"',
        )
        await wait_until(
            lambda: link.return_watch.probes >= 3,
            timeout=10,
            what="lambda: link.return_watch.probes >= 3",
        )  # it looks, and finds nothing
        assert link.state.probe_reconnects == 0
        connects = link.state.connects
        broker.start()
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=15, what="online via the probe"
        )
        assert link.state.probe_reconnects == 1
        assert link.state.connects == connects + 1
        async with cloud_side(pki, broker.port) as cloud:
            # The vehicle's retained status says online again: a whole session, not a socket.
            await wait_until(
                lambda: any(b'"online"' in r.payload for r in cloud.on("status")),
                timeout=10,
                what='lambda: any(b\'"online"\' in r.payload for r in cloud.on("stat',
            )


async def test_a_broker_that_accepts_but_fails_is_left_to_the_backoff(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    # The proxy accepts TCP, then drops the connection: the broker behind it is down.
    broker.stop()
    options = {"reconnect_initial_s": 0.2, "reconnect_max_s": 0.4}
    async with (
        link_proxy(broker.port) as proxy,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", proxy.port, **options)
        ) as supervisor,
    ):
        link = link_module(supervisor).link
        await wait_until(lambda: link.state.attempt >= 8, timeout=20, what="eight attempts")
        # One probe per wait (it reaches the port, so probing stops): no hammering.
        assert link.return_watch.probes <= link.state.attempt
        assert link.state.probe_reconnects == 0
        assert link_state(supervisor) == "offline"
