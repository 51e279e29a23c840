"""Desired state: validated like the file, applied without touching unaffected modules, kept."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent_topics import APPLY_DESIRED_TOPIC, APPLY_SIGNED_TOPIC
from edge_agent.config import validate_config
from edge_agent.config.desired import LAST_GOOD_FILE
from edge_agent.config.signed import SIGNED_FILE
from edge_agent.module_api import ModuleState
from edge_agent.supervisor import Supervisor
from fixtures.waiting import wait_until, wait_until_sync

BEAT = "edge_agent.modules.heartbeat:HeartbeatModule"


def base_modules() -> dict[str, Any]:
    return {
        "heartbeat": {"config": {"interval_s": 1.0}},
        "beat2": {"entry_point": BEAT, "config": {"topic": "agent/beat2"}},
    }


async def started(
    tmp_path: Path, spool: dict[str, Any] | None = None
) -> tuple[Supervisor, asyncio.Task[int]]:
    data: dict[str, Any] = {
        "agent": {"vehicle_id": "v-1", "state_dir": str(tmp_path)},
        "modules": base_modules(),
    }
    if spool is not None:
        data["spool"] = spool
    supervisor = Supervisor(validate_config(data))
    task = asyncio.create_task(supervisor.run())
    await wait_until(
        lambda: all(r.state is ModuleState.RUNNING for r in supervisor.runners.values()),
        what="every module running",
    )
    return supervisor, task


async def apply(supervisor: Supervisor, desired: Any, topic: str = APPLY_DESIRED_TOPIC) -> Any:
    payload = desired if isinstance(desired, bytes) else json.dumps(desired).encode()
    if topic == APPLY_SIGNED_TOPIC:
        payload = desired
    reply = await supervisor.bus.request(topic, payload, timeout=10)
    result: dict[str, Any] = reply.payload
    return result


async def signed(supervisor: Supervisor, document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await apply(supervisor, document, APPLY_SIGNED_TOPIC)
    return result


async def test_option_change_is_applied_in_place_and_others_untouched(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path)
    heartbeat, beat2 = supervisor.runners["heartbeat"], supervisor.runners["beat2"]
    module_before = heartbeat.module
    desired = {"version": "7", "modules": {"heartbeat": {"config": {"interval_s": 0.25}}}}
    result = await apply(supervisor, desired)
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


async def test_a_setting_the_next_desired_state_leaves_out_returns_to_the_file(
    tmp_path: Path,
) -> None:
    supervisor, task = await started(tmp_path)
    tuned = {"version": "1", "modules": {"heartbeat": {"config": {"interval_s": 0.25}}}}
    assert (await apply(supervisor, tuned))["accepted"]
    result = await apply(supervisor, {"version": "2", "modules": {}})
    assert result["accepted"], result
    assert result["report"]["reconfigured"] == ["heartbeat"]
    module = supervisor.runners["heartbeat"].module
    assert module is not None
    assert module.config.interval_s == 1.0
    supervisor.request_stop()
    assert await task == 0


async def test_supervision_change_comes_signed_and_restarts_only_that_module(
    tmp_path: Path,
) -> None:
    supervisor, task = await started(tmp_path)
    heartbeat = supervisor.runners["heartbeat"]
    table = {**base_modules()["beat2"], "restart": "always"}
    refused = await apply(supervisor, {"version": 2, "modules": {"beat2": {"restart": "always"}}})
    assert refused["errors"] == [
        "modules.beat2.restart: privileged setting: it changes only through a signed config target"
    ]
    result = await signed(supervisor, {"version": "2", "modules": {"beat2": table}})
    assert result["accepted"], result
    assert result["report"]["restarted"] == ["beat2"]
    assert supervisor.runners["heartbeat"] is heartbeat
    await wait_until(
        lambda: supervisor.runners["beat2"].state is ModuleState.RUNNING, what="beat2 running"
    )
    assert supervisor.runners["beat2"].settings.restart.value == "always"
    assert json.loads((tmp_path / SIGNED_FILE).read_text())["version"] == "2"
    assert supervisor.snapshot()["agent"]["config"]["signed_version"] == "2"
    supervisor.request_stop()
    assert await task == 0


async def test_signed_config_adds_and_removes_modules(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path)
    modules = {"beat2": {"enabled": False}, "beat3": {"entry_point": BEAT}}
    result = await signed(supervisor, {"version": "3", "modules": modules})
    assert result["report"]["added"] == ["beat3"]
    assert result["report"]["removed"] == ["beat2"]
    assert set(supervisor.runners) == {"heartbeat", "beat3"}
    await wait_until(
        lambda: supervisor.runners["beat3"].state is ModuleState.RUNNING, what="beat3 running"
    )
    supervisor.request_stop()
    assert await task == 0


async def test_signed_config_versions_only_go_up(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path)
    first = {"version": "1.2", "modules": {"beat3": {"entry_point": BEAT}}}
    assert (await signed(supervisor, first))["accepted"]
    for version in ("1.2", "1.1", "1"):
        result = await signed(supervisor, {"version": version, "modules": {}})
        assert result["errors"] == [
            f"signed config.version: not newer than 1.2 (got {version!r})"
        ], result
    assert "beat3" in supervisor.runners
    supervisor.request_stop()
    assert await task == 0


async def test_signed_config_keeps_the_desired_state_while_it_fits(tmp_path: Path) -> None:
    supervisor, task = await started(tmp_path)
    tuned = {"version": "d1", "modules": {"heartbeat": {"config": {"interval_s": 0.25}}}}
    assert (await apply(supervisor, tuned))["accepted"]
    table = {**base_modules()["beat2"], "stop_timeout_s": 1.0}
    result = await signed(supervisor, {"version": "1", "modules": {"beat2": table}})
    assert result["accepted"], result
    assert not result["desired_dropped"]
    module = supervisor.runners["heartbeat"].module
    assert module is not None
    assert module.config.interval_s == 0.25
    # A signed config that disables the tuned module: the desired state no longer fits.
    result = await signed(
        supervisor, {"version": "2", "modules": {"heartbeat": {"enabled": False}}}
    )
    assert result["accepted"], result
    assert result["desired_dropped"]
    assert "heartbeat" not in supervisor.runners
    assert not (tmp_path / LAST_GOOD_FILE).exists()
    supervisor.request_stop()
    assert await task == 0


async def test_local_tables_stay_local(tmp_path: Path) -> None:
    spool = {"max_mb": 64.0, "reserve_mb": 2.0}
    supervisor, task = await started(tmp_path, spool=spool)
    agent_before = supervisor.config.agent.agent.model_dump()
    spool_before = supervisor.config.agent.spool.model_dump()
    assert spool_before["max_mb"] == 64.0
    for key in ("spool", "agent"):
        result = await apply(supervisor, {"version": 1, "modules": {}, key: {"max_mb": 1}})
        assert result["errors"] == [
            f"desired.{key}: local table: [agent] and [spool] come from the vehicle's own "
            "config file only"
        ]
        result = await signed(supervisor, {"version": "1", "modules": {}, key: {}})
        assert result["errors"][0].startswith(f"signed config.{key}: local table")
    tuned = {"version": "2", "modules": {"heartbeat": {"config": {"interval_s": 0.5}}}}
    assert (await apply(supervisor, tuned))["accepted"]
    assert (await signed(supervisor, {"version": "3", "modules": {}}))["accepted"]
    assert supervisor.config.agent.spool.model_dump() == spool_before
    assert supervisor.config.agent.agent.model_dump() == agent_before
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
        (
            {"version": 1, "modules": {"warp-drive": {}}},
            "modules.warp-drive: not a module enabled on this vehicle",
        ),
        (
            {"version": 1, "modules": {"heartbeat": {"config": {"interval_s": "fast"}}}},
            "modules.heartbeat.config.interval_s:",
        ),
        (
            {"version": 1, "modules": {"heartbeat": {"config": {"warp": 9}}}},
            "modules.heartbeat.config.warp: unknown setting",
        ),
        (
            {"version": 1, "modules": {"heartbeat": {"restart": "sometimes"}}},
            "modules.heartbeat.restart: privileged setting",
        ),
        (
            {"version": 1, "modules": {"heartbeat": {"confg": {"interval_s": 0.1}}}},
            "modules.heartbeat.confg: unknown setting",
        ),
        ({"version": 1, "modules": {"heartbeat": []}}, "modules.heartbeat: must be a table"),
        ({"version": 1, "agent": {}, "modules": {}}, "desired.agent: local table"),
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


def health(state_dir: Path) -> dict[str, Any]:
    """The agent's health file, or {} while it is missing or half written."""
    try:
        snapshot: dict[str, Any] = json.loads((state_dir / "health.json").read_text())
    except (OSError, ValueError):
        return {}
    return snapshot


def test_last_good_desired_state_survives_a_restart(tmp_path: Path) -> None:
    """A real agent process starts on the stored signed config and desired state."""
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nvehicle_id = "v-1"\nstate_dir = "{tmp_path}"\n[modules.heartbeat]\n'
    )
    (tmp_path / SIGNED_FILE).write_text(
        json.dumps({"version": "3", "modules": {"beat2": {"entry_point": BEAT}}})
    )
    (tmp_path / LAST_GOOD_FILE).write_text(
        json.dumps({"version": "41", "modules": {"beat2": {"config": {"interval_s": 0.5}}}})
    )
    agent = subprocess.Popen(
        [sys.executable, "-P", "-m", "edge_agent", "run", "--config", str(config)],
        stderr=subprocess.PIPE,
    )
    try:
        snapshot = wait_until_sync(
            lambda: (
                (found := health(tmp_path)).get("modules", {}).get("beat2", {}).get("state")
                == "running"
                and found
            ),
            timeout=20,
            what="beat2 running in the health file",
        )
        assert "desired state 41" in snapshot["agent"]["config_source"]
        assert snapshot["agent"]["config"]["signed_version"] == "3"
    finally:
        os.kill(agent.pid, signal.SIGTERM)
        _, stderr = agent.communicate(timeout=20)
    assert agent.returncode == 0, stderr.decode()


@pytest.mark.parametrize(
    ("stored", "warning"),
    [
        (LAST_GOOD_FILE, b"stored desired state no longer valid"),
        (SIGNED_FILE, b"stored signed config no longer valid"),
    ],
)
def test_stale_stored_layer_falls_back_to_the_file(
    tmp_path: Path, stored: str, warning: bytes
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nvehicle_id = "v-1"\nstate_dir = "{tmp_path}"\n[modules.heartbeat]\n'
    )
    (tmp_path / stored).write_text(
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
        snapshot = wait_until_sync(
            lambda: (found := health(tmp_path)).get("agent", {}).get("ready") and found,
            timeout=20,
            what="the agent ready in the health file",
        )
        assert snapshot["agent"]["config_source"] == str(config)
    finally:
        os.kill(agent.pid, signal.SIGTERM)
        _, stderr = agent.communicate(timeout=20)
    assert agent.returncode == 0
    assert warning in stderr
