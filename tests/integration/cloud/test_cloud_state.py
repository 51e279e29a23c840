"""Desired/reported state, commands and sessions over a real mosquitto.

The cloud side uses the stand-in's own senders (``edge_agent.simulator.cloud_consumer``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w

from edge_agent.simulator.cloud_consumer import BrokerAccess, send_command, send_desired
from edge_agent.simulator.rig.broker import LocalBroker
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
HEARTBEAT = {"config": {"interval_s": 1.0}}


def access(pki: Pki, port: int) -> BrokerAccess:
    cert = pki.client("cloud")
    return BrokerAccess("127.0.0.1", port, pki.ca.cert_file, cert.cert_file, cert.key_file)


def latest_reported(cloud: CloudSide, where: Callable[[dict[str, Any]], bool]) -> bool:
    return any(where(document) for document in cloud.json_on("state/reported"))


def reported(cloud: CloudSide, where: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    return next(d for d in reversed(cloud.json_on("state/reported")) if where(d))


async def test_desired_state_applied_in_place_or_rejected_with_the_reason(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    link = link_config(pki, "veh-1", broker.port)
    async with (
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent", "veh-1", link, extra_modules={"heartbeat": HEARTBEAT}
        ) as supervisor,
    ):
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
        )
        cloud_link = supervisor.runners["cloud-link"].module
        heartbeat = supervisor.runners["heartbeat"].module
        await send_desired(
            access(pki, broker.port),
            "veh-1",
            {"version": "v2", "modules": {"heartbeat": {"config": {"interval_s": 0.25}}}},
        )
        await wait_until(
            lambda: latest_reported(cloud, lambda d: d["desired_version"] == "v2"),
            timeout=10,
            what="reported state naming desired version v2",
        )
        document = reported(cloud, lambda d: d["desired_version"] == "v2")
        assert document["last_applied"]["report"]["reconfigured"] == ["heartbeat"]
        assert document["last_applied"]["report"]["unchanged"] == ["cloud-link"]
        assert document["modules"]["heartbeat"]["state"] == "running"
        assert supervisor.runners["heartbeat"].module is heartbeat  # not restarted
        assert supervisor.runners["cloud-link"].module is cloud_link
        assert heartbeat.config.interval_s == 0.25
        assert cloud_link.link.state.connects == 1  # the link never dropped

        bad = {"version": "v3", "modules": {"heartbeat": {"config": {"interval_s": -1}}}}
        await send_desired(access(pki, broker.port), "veh-1", bad)
        await wait_until(
            lambda: latest_reported(
                cloud, lambda d: (d["last_rejection"] or {}).get("version") == "v3"
            ),
            timeout=10,
            what="reported state rejecting desired version v3",
        )
        document = reported(cloud, lambda d: (d["last_rejection"] or {}).get("version") == "v3")
        assert any(
            "modules.heartbeat.config.interval_s" in e for e in document["last_rejection"]["errors"]
        )
        assert document["desired_version"] == "v2"  # still on the last good one
        assert heartbeat.config.interval_s == 0.25

        async with access(pki, broker.port).client("cloud-raw", persistent=False) as raw:
            await raw.publish("vehicles/veh-1/state/desired", b"{not json", qos=1, retain=True)
        await wait_until(
            lambda: latest_reported(
                cloud, lambda d: "not valid JSON" in json.dumps(d["last_rejection"])
            ),
            timeout=10,
            what="reported state rejecting the malformed desired state",
        )

        # Privileged settings (here: the broker) never come from a desired state.
        await send_desired(
            access(pki, broker.port),
            "veh-1",
            {"version": "v4", "modules": {"cloud-link": {"config": {"host": "elsewhere"}}}},
        )
        await wait_until(
            lambda: latest_reported(
                cloud, lambda d: (d["last_rejection"] or {}).get("version") == "v4"
            ),
            timeout=10,
            what="reported state rejecting desired version v4",
        )
        document = reported(cloud, lambda d: (d["last_rejection"] or {}).get("version") == "v4")
        assert document["last_rejection"]["errors"] == [
            "modules.cloud-link.config.host: privileged setting: it changes only through a "
            "signed config target"
        ]
        assert supervisor.runners["cloud-link"].module is cloud_link
        assert cloud_link.link.state.connects == 1


async def test_commands_over_mqtt(pki: Pki, broker: LocalBroker, tmp_path: Path) -> None:
    cloud_access = access(pki, broker.port)
    async with (
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", broker.port)
        ) as supervisor,
    ):
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
        )
        reply = await send_command(cloud_access, "veh-1", "ping", timeout_s=5)
        assert reply["ok"]
        assert reply["result"]["vehicle_id"] == "veh-1"
        reply = await send_command(cloud_access, "veh-1", "get_status", timeout_s=5)
        assert reply["result"]["agent"]["modules"]["cloud-link"]["state"] == "running"
        assert reply["result"]["link"]["state"] == "online"
        reply = await send_command(cloud_access, "veh-1", "snapshot", timeout_s=5)
        assert not reply["ok"]
        assert "no module serves telemetry/snapshot" in reply["error"]
        reply = await send_command(cloud_access, "veh-1", "reboot_ecu", timeout_s=5)
        assert "unknown command 'reboot_ecu'" in reply["error"]
        await cloud.publish("vehicles/veh-1/commands/ping", b"\xff garbage")
        await wait_until(
            lambda: any(r.get("id") is None for r in cloud.json_on("commands/ping/reply")),
            timeout=10,
            what="a ping reply without an id",
        )
        assert link_module(supervisor).commands.handled == 5


async def test_session_present_false_restores_subscriptions_and_reported_state(
    pki: Pki, tmp_path: Path
) -> None:
    broker = LocalBroker(tmp_path / "broker", tls=pki.broker_tls(), persistence=False)
    broker.start()
    try:
        async with (
            cloud_side(pki, broker.port) as cloud,
            running_agent(
                tmp_path / "agent", "veh-1", link_config(pki, "veh-1", broker.port)
            ) as supervisor,
        ):
            await wait_until(
                lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
            )
            await wait_until(
                lambda: cloud.on("state/reported"), timeout=10, what="the first reported state"
            )
            broker.kill()
            broker.start()  # no persistence: every session and retained message is gone
            await wait_until(
                lambda: link_module(supervisor).link.state.connects == 2,
                timeout=10,
                what="the second connect",
            )
            assert link_module(supervisor).link.state.session_present is False
            await wait_until(
                lambda: latest_reported(cloud, lambda d: d["link"]["connects"] == 2),
                timeout=10,
                what="reported state showing the second connect",
            )
            reply = await send_command(access(pki, broker.port), "veh-1", "ping", timeout_s=5)
            assert reply["ok"]  # the command subscription is back
            async with cloud_side(pki, broker.port, "vehicles/veh-1/state/reported") as late:
                await wait_until(
                    lambda: late.on("state/reported"), timeout=5, what="the retained reported state"
                )  # retained again
                assert late.received[0].retain
    finally:
        broker.stop()


async def test_persistent_session_keeps_commands_sent_while_offline(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    async with (
        link_proxy(broker.port) as proxy,
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", proxy.port)
        ) as supervisor,
    ):
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
        )
        await proxy.cut()
        await wait_until(
            lambda: link_state(supervisor) == "offline", timeout=5, what="the link offline"
        )
        await wait_until(
            lambda: json.loads(cloud.on("status")[-1].payload)["state"] == "offline",
            timeout=10,
            what="last will",
        )
        await cloud.publish("vehicles/veh-1/commands/ping", json.dumps({"id": "queued"}).encode())
        await proxy.restore()
        await wait_until(
            lambda: any(r["id"] == "queued" for r in cloud.json_on("commands/ping/reply")),
            timeout=10,
            what="the reply to the ping queued while offline",
        )
        assert link_module(supervisor).link.state.session_present is True


def _agent_toml(pki: Pki, state_dir: Path, port: int) -> str:
    link = {
        "host": "127.0.0.1",
        "port": port,
        "keepalive_s": 2,
        "reconnect_initial_s": 0.1,
        "reconnect_max_s": 0.5,
        "reported_min_interval_s": 0.0,
        "tls": pki.tls_config("veh-9"),
    }
    config = {
        "agent": {"vehicle_id": "veh-9", "state_dir": str(state_dir)},
        "modules": {"heartbeat": {"config": {"interval_s": 1.0}}, "cloud-link": {"config": link}},
    }
    return tomli_w.dumps(config)


async def test_last_good_configuration_survives_a_restart(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(_agent_toml(pki, tmp_path / "state", broker.port))
    log = (tmp_path / "agent.log").open("wb")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-P",
                "-m",
                "edge_agent",
                "--log-format",
                "json",
                "run",
                "--config",
                str(config),
            ],
            stdout=log,
            stderr=log,
        )

    cloud_access = access(pki, broker.port)
    agent = start()
    try:
        async with cloud_side(pki, broker.port) as cloud:
            await wait_until(lambda: cloud.on("state/reported"), timeout=20, what="agent online")
            modules: dict[str, Any] = {
                "cloud-link": {"config": {"command_timeout_s": 5.0}},
                "heartbeat": {"config": {"interval_s": 0.3}},
            }
            await send_desired(cloud_access, "veh-9", {"version": "v2", "modules": modules})
            await wait_until(
                lambda: latest_reported(cloud, lambda d: d["desired_version"] == "v2"),
                timeout=10,
                what="reported state naming desired version v2",
            )
            modules["heartbeat"] = {"config": {"interval_s": "fast"}}
            await send_desired(cloud_access, "veh-9", {"version": "v3", "modules": modules})
            await wait_until(
                lambda: latest_reported(
                    cloud, lambda d: (d["last_rejection"] or {}).get("version") == "v3"
                ),
                timeout=10,
                what="reported state rejecting desired version v3",
            )

            agent.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(agent.wait, 20) == 0
            before = len(cloud.on("state/reported"))
            agent = start()
            await wait_until(
                lambda: len(cloud.on("state/reported")) > before, timeout=20, what="back online"
            )
            document = cloud.json_on("state/reported")[-1]
            assert document["agent"]["config_source"] == "desired state v2"
            assert document["last_rejection"]["version"] == "v3"  # remembered across restarts
            reply = await send_command(cloud_access, "veh-9", "get_status", timeout_s=5)
            assert reply["result"]["agent"]["modules"]["heartbeat"]["state"] == "running"
    finally:
        if agent.poll() is None:
            os.kill(agent.pid, signal.SIGTERM)
            await asyncio.to_thread(agent.wait, 20)
        log.close()
