"""Probation: a change that touches the cloud link stays only if the link comes back.

Real mosquitto with mutual TLS, the real cloud link. A signed change that points the link at
a dead port is reverted after ``agent.link_probation_s``, the reason goes upstream as an event
and into the health snapshot; a change that keeps the link up is kept. The probation record
survives a restart of the agent process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import tomli_w

from edge_agent.agent_topics import APPLY_DESIRED_TOPIC, APPLY_SIGNED_TOPIC
from edge_agent.config import validate_config
from edge_agent.config.desired import LAST_GOOD_FILE
from edge_agent.config.signed import SIGNED_FILE
from edge_agent.simulator.rig.broker import LocalBroker
from edge_agent.supervisor import Supervisor
from edge_agent.supervisor.probation import PROBATION_FILE
from fixtures.cloud import Pki, cloud_side, link_config, link_state, needs_mosquitto
from fixtures.waiting import wait_until, wait_until_sync

pytestmark = needs_mosquitto
PROBATION_S = 3.0


def dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def agent(state_dir: Path, link: dict[str, Any]) -> AsyncIterator[Supervisor]:
    config = validate_config(
        {
            "agent": {
                "vehicle_id": "veh-1",
                "state_dir": str(state_dir),
                "health_interval_s": 0.2,
                "link_probation_s": PROBATION_S,
            },
            "modules": {
                "cloud-link": {"config": link, "stop_timeout_s": 5.0},
                "heartbeat": {},
            },
        }
    )
    supervisor = Supervisor(config)
    task = asyncio.create_task(supervisor.run())
    try:
        await wait_until(lambda: link_state(supervisor) == "online", timeout=10, what="link online")
        yield supervisor
    finally:
        supervisor.request_stop()
        assert await asyncio.wait_for(task, 15) == 0


async def request(supervisor: Supervisor, topic: str, document: Any) -> dict[str, Any]:
    reply = await supervisor.bus.request(topic, document, timeout=20)
    result: dict[str, Any] = reply.payload
    return result


def probation(supervisor: Supervisor) -> dict[str, Any]:
    config: dict[str, Any] = supervisor.snapshot()["agent"]["config"]
    return config


async def test_a_signed_change_that_cuts_the_link_is_reverted(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    link = link_config(pki, "veh-1", broker.port)
    state_dir = tmp_path / "agent"
    async with cloud_side(pki, broker.port) as cloud, agent(state_dir, link) as supervisor:
        cut_off = {"config": {**link, "port": dead_port()}, "stop_timeout_s": 5.0}
        result = await request(
            supervisor, APPLY_SIGNED_TOPIC, {"version": "1", "modules": {"cloud-link": cut_off}}
        )
        assert result["accepted"], result
        assert result["report"]["restarted"] == ["cloud-link"]
        assert probation(supervisor)["probation"] == "signed config 1"
        assert (state_dir / PROBATION_FILE).exists()
        assert (state_dir / SIGNED_FILE).exists()

        # While on probation, no further change is taken.
        tuned = {"version": "d", "modules": {"heartbeat": {"config": {"interval_s": 0.5}}}}
        refused = await request(supervisor, APPLY_DESIRED_TOPIC, tuned)
        assert not refused["accepted"]
        assert "signed config 1 is on probation" in refused["errors"][0]

        await wait_until(
            lambda: (probation(supervisor)["last_probation"] or {}).get("result") == "reverted",
            timeout=PROBATION_S + 10,
            what="the change reverted",
        )
        reason = probation(supervisor)["last_probation"]["reason"]
        assert f"not back online within {PROBATION_S:g} s" in reason
        assert probation(supervisor)["probation"] is None
        assert probation(supervisor)["signed_version"] is None
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=10, what="the link back"
        )
        assert supervisor.runners["cloud-link"].plan.config.port == broker.port  # type: ignore[attr-defined]
        assert not (state_dir / SIGNED_FILE).exists()
        assert not (state_dir / PROBATION_FILE).exists()
        await wait_until(
            lambda: any(e.get("kind") == "config-reverted" for e in cloud.json_on("events")),
            timeout=10,
            what="the event upstream",
        )
        event = next(e for e in cloud.json_on("events") if e.get("kind") == "config-reverted")
        assert event["change"] == "signed config 1"


async def test_a_change_that_keeps_the_link_up_is_kept(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    link = link_config(pki, "veh-1", broker.port)
    state_dir = tmp_path / "agent"
    async with agent(state_dir, link) as supervisor:
        module = supervisor.runners["cloud-link"].module
        tuned = {"version": "d1", "modules": {"cloud-link": {"config": {"command_timeout_s": 4.0}}}}
        result = await request(supervisor, APPLY_DESIRED_TOPIC, tuned)
        assert result["accepted"], result
        assert result["report"]["reconfigured"] == ["cloud-link"]
        await wait_until(
            lambda: (probation(supervisor)["last_probation"] or {}).get("result") == "kept",
            timeout=PROBATION_S,
            what="kept",
        )
        assert supervisor.runners["cloud-link"].module is module
        assert json.loads((state_dir / LAST_GOOD_FILE).read_text())["version"] == "d1"
        assert not (state_dir / PROBATION_FILE).exists()
        # A signed change of the connection (new keepalive): reconnects, comes back, kept.
        table = {"config": {**link, "keepalive_s": 3}, "stop_timeout_s": 5.0}
        result = await request(
            supervisor, APPLY_SIGNED_TOPIC, {"version": "2", "modules": {"cloud-link": table}}
        )
        assert result["report"]["restarted"] == ["cloud-link"]
        await wait_until(
            lambda: (
                (probation(supervisor)["last_probation"] or {}).get("change") == "signed config 2"
            ),
            timeout=PROBATION_S + 5,
            what="signed config 2 judged",
        )
        assert probation(supervisor)["last_probation"]["result"] == "kept"
        assert probation(supervisor)["signed_version"] == "2"


def read_health(state_dir: Path) -> dict[str, Any]:
    try:
        health: dict[str, Any] = json.loads((state_dir / "health.json").read_text())
    except (OSError, ValueError):
        return {}
    return health


def test_a_probation_interrupted_by_a_restart_resumes_and_reverts(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    """An agent restarted in the middle of a probation does not keep a change that cuts it off."""
    state_dir = tmp_path / "agent"
    state_dir.mkdir()
    link = link_config(pki, "veh-1", broker.port)
    document = {
        "agent": {
            "vehicle_id": "veh-1",
            "state_dir": str(state_dir),
            "health_interval_s": 0.2,
            "link_probation_s": PROBATION_S,
        },
        "modules": {"cloud-link": {"stop_timeout_s": 5.0, "config": link}},
    }
    config = tmp_path / "agent.toml"
    config.write_text(tomli_w.dumps(document))
    cut_off = {"config": {**link, "port": dead_port()}, "stop_timeout_s": 5.0}
    (state_dir / SIGNED_FILE).write_text(
        json.dumps({"version": "1", "modules": {"cloud-link": cut_off}})
    )
    (state_dir / PROBATION_FILE).write_text(
        json.dumps({"change": "signed config 1", "previous_signed": None, "previous_desired": None})
    )
    agent_process = subprocess.Popen(
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
        stderr=subprocess.PIPE,
    )
    try:

        def reverted_and_online() -> dict[str, Any] | None:
            health = read_health(state_dir)
            last = health.get("agent", {}).get("config", {}).get("last_probation") or {}
            details = health.get("modules", {}).get("cloud-link", {}).get("details", {})
            return (
                health if last.get("result") == "reverted" and details.get("link_online") else None
            )

        health = wait_until_sync(
            reverted_and_online,
            timeout=PROBATION_S + 30,
            what="the probation reverted and the link back online",
            details=lambda: read_health(state_dir),
            poll_s=0.1,
        )
        assert health["agent"]["config"]["last_probation"]["result"] == "reverted", health
        assert health["modules"]["cloud-link"]["details"]["link_online"] is True
        assert health["agent"]["config_source"] == str(config)
        assert not (state_dir / SIGNED_FILE).exists()
        assert not (state_dir / PROBATION_FILE).exists()
    finally:
        os.kill(agent_process.pid, signal.SIGTERM)
        _, stderr = agent_process.communicate(timeout=30)
    assert agent_process.returncode == 0, stderr.decode()[-2000:]
    assert b"resuming the probation" in stderr
