"""Desired state: validated like the file, applied without touching unaffected modules, kept."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edge_agent.config import validate_config
from edge_agent.config.desired import LAST_GOOD_FILE
from edge_agent.module_api import ModuleState
from edge_agent.supervisor import Supervisor
from edge_agent.supervisor.services import APPLY_DESIRED_TOPIC
from fixtures.waiting import until

BEAT = "edge_agent.modules.heartbeat:HeartbeatModule"


def base_modules() -> dict[str, Any]:
    return {
        "heartbeat": {"config": {"interval_s": 1.0}},
        "beat2": {"entry_point": BEAT, "config": {"topic": "agent/beat2"}},
    }


async def started(tmp_path: Path) -> tuple[Supervisor, asyncio.Task[int]]:
    config = validate_config(
        {"agent": {"vehicle_id": "v-1", "state_dir": str(tmp_path)}, "modules": base_modules()}
    )
    supervisor = Supervisor(config)
    task = asyncio.create_task(supervisor.run())
    await until(lambda: all(r.state is ModuleState.RUNNING for r in supervisor.runners.values()))
    return supervisor, task


async def apply(supervisor: Supervisor, desired: Any) -> dict[str, Any]:
    payload = desired if isinstance(desired, bytes) else json.dumps(desired).encode()
    reply = await supervisor.bus.request(APPLY_DESIRED_TOPIC, payload, timeout=10)
    result: dict[str, Any] = reply.payload
    return result


async def test_option_change_is_applied_in_place_and_others_untouched(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path)
    heartbeat, beat2 = supervisor.runners["heartbeat"], supervisor.runners["beat2"]
    module_before = heartbeat.module
    modules = base_modules()
    modules["heartbeat"]["config"]["interval_s"] = 0.25
    result = await apply(supervisor, {"version": "7", "modules": modules})
    assert result["accepted"], result
    assert result["report"]["reconfigured"] == ["heartbeat"]
    assert result["report"]["unchanged"] == ["beat2"]
    assert supervisor.runners["heartbeat"] is heartbeat
    assert heartbeat.module is module_before  # same instance: not restarted
    assert heartbeat.module.config.interval_s == 0.25
    assert supervisor.runners["beat2"] is beat2
    assert supervisor.snapshot()["agent"]["desired_version"] == "7"
    stored = json.loads((tmp_path / LAST_GOOD_FILE).read_text())
    assert stored["version"] == "7"
    supervisor.request_stop()
    assert await task == 0


async def test_supervision_change_restarts_only_that_module(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path)
    heartbeat = supervisor.runners["heartbeat"]
    modules = base_modules()
    modules["beat2"]["restart"] = "always"
    result = await apply(supervisor, {"version": 2, "modules": modules})
    assert result["report"]["restarted"] == ["beat2"]
    assert supervisor.runners["heartbeat"] is heartbeat
    await until(lambda: supervisor.runners["beat2"].state is ModuleState.RUNNING)
    assert supervisor.runners["beat2"].settings.restart.value == "always"
    supervisor.request_stop()
    assert await task == 0


async def test_modules_added_and_removed(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path)
    modules = {"heartbeat": base_modules()["heartbeat"], "beat3": {"entry_point": BEAT}}
    result = await apply(supervisor, {"version": 3, "modules": modules})
    assert result["report"]["added"] == ["beat3"]
    assert result["report"]["removed"] == ["beat2"]
    assert set(supervisor.runners) == {"heartbeat", "beat3"}
    await until(lambda: supervisor.runners["beat3"].state is ModuleState.RUNNING)
    supervisor.request_stop()
    assert await task == 0


async def test_invalid_desired_state_is_rejected_with_reasons_and_changes_nothing(
    tmp_path: Path,
) -> None:
    supervisor, task = await started(tmp_path)
    runners = dict(supervisor.runners)
    cases: list[tuple[Any, str]] = [
        (b"{not json", "desired: not valid JSON"),
        (b"[1, 2]", "desired: must be a JSON object"),
        ({"version": 1, "modules": {"warp-drive": {}}}, "modules.warp-drive: unknown module"),
        (
            {"version": 1, "modules": {"heartbeat": {"config": {"interval_s": "fast"}}}},
            "modules.heartbeat.config.interval_s:",
        ),
        (
            {"version": 1, "modules": {"heartbeat": {"restart": "sometimes"}}},
            "modules.heartbeat.restart:",
        ),
        ({"version": 1, "agent": {}, "modules": {}}, "desired.agent: unknown key"),
    ]
    for payload, expected in cases:
        result = await apply(supervisor, payload)
        assert not result["accepted"]
        assert any(line.startswith(expected) for line in result["errors"]), (expected, result)
    assert supervisor.runners == runners
    assert all(r.state is ModuleState.RUNNING for r in runners.values())
    assert not (tmp_path / LAST_GOOD_FILE).exists()
    supervisor.request_stop()
    assert await task == 0


def test_last_good_desired_state_survives_a_restart(tmp_path: Path) -> None:
    """A real agent process starts on the stored desired state, not just the file."""
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nvehicle_id = "v-1"\nstate_dir = "{tmp_path}"\n[modules.heartbeat]\n'
    )
    (tmp_path / LAST_GOOD_FILE).write_text(
        json.dumps({"version": "41", "modules": {"heartbeat": {}, "beat2": {"entry_point": BEAT}}})
    )
    agent = subprocess.Popen(
        [sys.executable, "-P", "-m", "edge_agent", "run", "--config", str(config)],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        snapshot: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                snapshot = json.loads((tmp_path / "health.json").read_text())
            except (OSError, ValueError):
                snapshot = {}
            if snapshot.get("modules", {}).get("beat2", {}).get("state") == "running":
                break
            time.sleep(0.05)
        assert snapshot["modules"]["beat2"]["state"] == "running"
        assert "desired state 41" in snapshot["agent"]["config_source"]
    finally:
        os.kill(agent.pid, signal.SIGTERM)
        _, stderr = agent.communicate(timeout=20)
    assert agent.returncode == 0, stderr.decode()


def test_stale_stored_desired_state_falls_back_to_the_file(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nvehicle_id = "v-1"\nstate_dir = "{tmp_path}"\n[modules.heartbeat]\n'
    )
    (tmp_path / LAST_GOOD_FILE).write_text(
        json.dumps({"version": "9", "modules": {"uninstalled-module": {}}})
    )
    agent = subprocess.Popen(
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
        deadline = time.monotonic() + 20
        snapshot: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                snapshot = json.loads((tmp_path / "health.json").read_text())
            except (OSError, ValueError):
                snapshot = {}
            if snapshot.get("agent", {}).get("ready"):
                break
            time.sleep(0.05)
        assert snapshot["agent"]["config_source"] == str(config)
    finally:
        os.kill(agent.pid, signal.SIGTERM)
        _, stderr = agent.communicate(timeout=20)
    assert agent.returncode == 0
    assert b"stored desired state no longer valid" in stderr
