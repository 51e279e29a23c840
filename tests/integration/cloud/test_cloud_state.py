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

from edge_agent.bench.broker import LocalBroker
from edge_agent.simulator.cloud_consumer import BrokerAccess, send_command, send_desired
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
        await until(lambda: link_state(supervisor) == "online", 10)
        cloud_link = supervisor.runners["cloud-link"].module
        heartbeat = supervisor.runners["heartbeat"].module
        own = {"config": link, "stop_timeout_s": 5.0}
        await send_desired(
            access(pki, broker.port),
            "veh-1",
            {
                "version": "v2",
                "modules": {"cloud-link": own, "heartbeat": {"config": {"interval_s": 0.25}}},
            },
        )
        await until(lambda: latest_reported(cloud, lambda d: d["desired_version"] == "v2"), 10)
        document = reported(cloud, lambda d: d["desired_version"] == "v2")
        assert document["last_applied"]["report"]["reconfigured"] == ["heartbeat"]
        assert document["last_applied"]["report"]["unchanged"] == ["cloud-link"]
        assert document["modules"]["heartbeat"]["state"] == "running"
        assert supervisor.runners["heartbeat"].module is heartbeat  # not restarted
        assert supervisor.runners["cloud-link"].module is cloud_link
        assert heartbeat.config.interval_s == 0.25
        assert cloud_link.link.state.connects == 1  # the link never dropped

        bad = {
            "version": "v3",
            "modules": {"cloud-link": own, "heartbeat": {"config": {"interval_s": -1}}},
        }
        await send_desired(access(pki, broker.port), "veh-1", bad)
        await until(
            lambda: latest_reported(
                cloud, lambda d: (d["last_rejection"] or {}).get("version") == "v3"
            ),
            10,
        )
        document = reported(cloud, lambda d: (d["last_rejection"] or {}).get("version") == "v3")
        assert any(
            "modules.heartbeat.config.interval_s" in e for e in document["last_rejection"]["errors"]
        )
        assert document["desired_version"] == "v2"  # still on the last good one
        assert heartbeat.config.interval_s == 0.25

        async with access(pki, broker.port).client("cloud-raw", persistent=False) as raw:
            await raw.publish("vehicles/veh-1/state/desired", b"{not json", qos=1, retain=True)
        await until(
            lambda: latest_reported(
                cloud, lambda d: "not valid JSON" in json.dumps(d["last_rejection"])
            ),
            10,
        )

        await send_desired(
            access(pki, broker.port),
            "veh-1",
            {"version": "v4", "modules": {"heartbeat": HEARTBEAT}},
        )
        await until(
            lambda: latest_reported(
                cloud, lambda d: (d["last_rejection"] or {}).get("version") == "v4"
            ),
            10,
        )
        document = reported(cloud, lambda d: (d["last_rejection"] or {}).get("version") == "v4")
        assert "would lose its cloud link" in document["last_rejection"]["errors"][0]
        assert supervisor.runners["cloud-link"].module is cloud_link


async def test_commands_over_mqtt(pki: Pki, broker: LocalBroker, tmp_path: Path) -> None:
    cloud_access = access(pki, broker.port)
    async with (
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", broker.port)
        ) as supervisor,
    ):
        await until(lambda: link_state(supervisor) == "online", 10)
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
        await until(
            lambda: any(r.get("id") is None for r in cloud.json_on("commands/ping/reply")), 10
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
            await until(lambda: link_state(supervisor) == "online", 10)
            await until(lambda: cloud.on("state/reported"), 10)
            broker.kill()
            broker.start()  # no persistence: every session and retained message is gone
            await until(lambda: link_module(supervisor).link.state.connects == 2, 10)
            assert link_module(supervisor).link.state.session_present is False
            await until(lambda: latest_reported(cloud, lambda d: d["link"]["connects"] == 2), 10)
            reply = await send_command(access(pki, broker.port), "veh-1", "ping", timeout_s=5)
            assert reply["ok"]  # the command subscription is back
            async with cloud_side(pki, broker.port, "vehicles/veh-1/state/reported") as late:
                await until(lambda: late.on("state/reported"), 5)  # retained again
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
        await until(lambda: link_state(supervisor) == "online", 10)
        await proxy.cut()
        await until(lambda: link_state(supervisor) == "offline", 5)
        await until(
            lambda: json.loads(cloud.on("status")[-1].payload)["state"] == "offline",
            10,
            "last will",
        )
        await cloud.publish("vehicles/veh-1/commands/ping", json.dumps({"id": "queued"}).encode())
        await proxy.restore()
        await until(
            lambda: any(r["id"] == "queued" for r in cloud.json_on("commands/ping/reply")), 10
        )
        assert link_module(supervisor).link.state.session_present is True


def _agent_toml(pki: Pki, state_dir: Path, port: int) -> str:
    tls = pki.tls_config("veh-9")
    return (
        "\n".join(
            [
                "[agent]",
                'vehicle_id = "veh-9"',
                f"state_dir = {json.dumps(str(state_dir))}",
                "[modules.heartbeat.config]",
                "interval_s = 1.0",
                "[modules.cloud-link.config]",
                'host = "127.0.0.1"',
                f"port = {port}",
                "keepalive_s = 2",
                "reconnect_initial_s = 0.1",
                "reconnect_max_s = 0.5",
                "reported_min_interval_s = 0.0",
                "[modules.cloud-link.config.tls]",
                *(f"{key} = {json.dumps(value)}" for key, value in tls.items()),
            ]
        )
        + "\n"
    )


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
            await until(lambda: cloud.on("state/reported"), 20, "agent online")
            link = {
                "host": "127.0.0.1",
                "port": broker.port,
                "keepalive_s": 2,
                "reconnect_initial_s": 0.1,
                "reconnect_max_s": 0.5,
                "reported_min_interval_s": 0.0,
                "tls": pki.tls_config("veh-9"),
            }
            modules = {"cloud-link": {"config": link}, "heartbeat": {"config": {"interval_s": 0.3}}}
            await send_desired(cloud_access, "veh-9", {"version": "v2", "modules": modules})
            await until(lambda: latest_reported(cloud, lambda d: d["desired_version"] == "v2"), 10)
            modules["heartbeat"] = {"config": {"interval_s": "fast"}}
            await send_desired(cloud_access, "veh-9", {"version": "v3", "modules": modules})
            await until(
                lambda: latest_reported(
                    cloud, lambda d: (d["last_rejection"] or {}).get("version") == "v3"
                ),
                10,
            )

            agent.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(agent.wait, 20) == 0
            before = len(cloud.on("state/reported"))
            agent = start()
            await until(lambda: len(cloud.on("state/reported")) > before, 20, "back online")
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
