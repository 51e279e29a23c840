"""Hostile desired states against a running agent: each refused, nothing changed, nothing run.

The agent runs the real modules (CAN reader and fast path on python-can virtual buses, the
cloud link without a broker, the OTA installer, telemetry, heartbeat). Each desired state
goes through the real desired-state path (``agent/config/apply``, what the cloud link hands
on from MQTT). Marker files, not log lines, prove nothing was imported or executed: a module
whose import creates a file, and a shell command that would create one.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent_topics import APPLY_DESIRED_TOPIC
from edge_agent.config import validate_config
from edge_agent.config.desired import LAST_GOOD_FILE
from edge_agent.module_api import ModuleState
from edge_agent.supervisor import Supervisor
from fixtures.hostile import EVIL_MODULE, hostile_states, markers
from fixtures.supervised import running_supervisor

__all__ = ["markers"]  # a fixture

DBC = "package:edge_agent.simulator/data/vehicle.dbc"


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Supervisor]:
    channel = f"hostile-{uuid.uuid4().hex[:8]}"
    modules: dict[str, Any] = {
        "heartbeat": {"config": {"interval_s": 1.0}},
        "can-reader": {
            "config": {
                "buses": [
                    {"name": "vehicle", "interface": "virtual", "channel": channel, "dbc": DBC}
                ]
            }
        },
        "fast-path": {"config": {"can": {"interface": "virtual", "channel": channel}}},
        "telemetry": {},
        "cloud-link": {
            "config": {"host": "127.0.0.1", "port": unused_port(), "tls": False},
            "stop_timeout_s": 5.0,
        },
        "ota": {
            "config": {
                "metadata_url": "http://127.0.0.1:9/metadata/",
                "targets_url": "http://127.0.0.1:9/targets/",
                "hardware_id": "bench-ecu",
            }
        },
    }
    config = validate_config(
        {
            "agent": {"vehicle_id": "v-hostile", "state_dir": str(tmp_path / "state")},
            "spool": {"max_mb": 32.0},
            "modules": modules,
        }
    )
    async with running_supervisor(config) as supervisor:
        yield supervisor


async def test_every_hostile_desired_state_is_refused_and_nothing_runs(
    agent: Supervisor, markers: dict[str, Path], tmp_path: Path
) -> None:
    supervisor = agent
    before = supervisor.config.agent.model_dump()
    layers_before = supervisor.config.layers
    instances = {name: runner.module for name, runner in supervisor.runners.items()}
    fast_path_pid = supervisor.runners["fast-path"].module.pid  # type: ignore[union-attr]
    catalogue = hostile_states(markers["executed"])
    assert len(catalogue) >= 20
    for what, document, expected in catalogue:
        reply = await supervisor.bus.request(
            APPLY_DESIRED_TOPIC, json.dumps(document).encode(), timeout=10
        )
        result = reply.payload
        assert not result["accepted"], what
        for line in expected:
            assert any(error.startswith(line) for error in result["errors"]), (what, result)
        assert supervisor.config.agent.model_dump() == before, what
    # A job after the RAUC attempt: the installer is unchanged (A/B), refuses it, runs nothing.
    statuses = supervisor.bus.subscribe("cloud/out/ota/status", maxsize=16)
    supervisor.bus.publish_nowait(
        "cloud/in/ota/jobs", json.dumps({"id": "after", "version": "9.9"}).encode()
    )
    async with asyncio.timeout(10):
        status = await statuses.get()
        while status.payload.get("job_id") != "after":
            status = await statuses.get()
    assert status.payload["phase"] == "refused"
    assert status.payload["code"] == "not-provisioned"
    assert status.payload.get("updater", "ab") == "ab"
    assert supervisor.config.layers == layers_before
    assert {name: runner.module for name, runner in supervisor.runners.items()} == instances
    assert all(r.state is ModuleState.RUNNING for r in supervisor.runners.values())
    assert supervisor.runners["fast-path"].module.pid == fast_path_pid  # type: ignore[union-attr]
    heartbeat = supervisor.runners["heartbeat"].module
    assert heartbeat is not None
    assert heartbeat.config.interval_s == 1.0  # the smuggled tunable change did not land
    assert not (tmp_path / "state" / LAST_GOOD_FILE).exists()
    assert not markers["imported"].exists(), "hostile code was imported"
    assert not markers["executed"].exists(), "a hostile command ran"
    assert EVIL_MODULE not in sys.modules
