"""Persistent state files written by another version, or damaged, read by a real agent.

Each file maps to a safe state with a one-line reason, logged and shown in health; the agent
never exits for it. (state.json of OTA: test_ota_foreign_state.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config.desired import LAST_GOOD_FILE
from fixtures.ota_world import agent_env
from fixtures.waiting import wait_until_sync

EDGE_AGENT = Path(sys.executable).parent / "edge-agent"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[agent]\nvehicle_id = "v-1"\nstate_dir = "{tmp_path}"\nhealth_interval_s = 0.2\n'
        "[modules.heartbeat]\n[modules.telemetry]\n"
    )
    return path


def health(state_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((state_dir / "health.json").read_text()))
    except (OSError, ValueError):
        return {}


StartAgent = Callable[[], "subprocess.Popen[bytes]"]


@pytest.fixture
def start_agent(config: Path) -> Iterator[StartAgent]:
    """Starts ``edge-agent run`` (JSON logs on stderr); anything still running is stopped."""
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [str(EDGE_AGENT), "--log-format", "json", "run", "--config", str(config)],
            stderr=subprocess.PIPE,
            env=agent_env(),
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        process.communicate(timeout=30)


def stop(process: subprocess.Popen[bytes]) -> bytes:
    """SIGTERM and the agent's log; it must exit 0."""
    os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stderr


NEWER_DESIRED = [
    pytest.param(
        json.dumps({"version": "50", "modules": {"heartbeat": {}}, "privileged": {"x": 1}}),
        "desired.privileged: unknown key",
        id="key-from-a-newer-version",
    ),
    pytest.param(
        json.dumps({"version": "51", "modules": {"heartbeat": {}}})[:30],
        "not valid JSON",
        id="truncated",
    ),
    pytest.param("[" * 50_000, "nested too deeply", id="deep-nesting"),
]


@pytest.mark.parametrize(("content", "reason"), NEWER_DESIRED)
def test_a_stored_desired_state_this_version_cannot_use_runs_on_the_config_file(
    tmp_path: Path, config: Path, start_agent: StartAgent, content: str, reason: str
) -> None:
    (tmp_path / LAST_GOOD_FILE).write_text(content)
    process = start_agent()
    snapshot = wait_until_sync(
        lambda: health(tmp_path) if health(tmp_path).get("agent", {}).get("ready") else None,
        timeout=20.0,
        what="the agent ready",
    )
    assert snapshot["agent"]["config_source"] == str(config)
    assert reason in snapshot["agent"]["desired_ignored"]
    assert "\n" not in snapshot["agent"]["desired_ignored"]
    status = subprocess.run(
        [str(EDGE_AGENT), "status", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=agent_env(),
        timeout=60,
        check=True,
    )
    assert f"desired state not applied: {tmp_path / LAST_GOOD_FILE}" in status.stdout
    stderr = stop(process)
    assert b"stored desired state not usable; running on the config file" in stderr
    assert (tmp_path / LAST_GOOD_FILE).read_text() == content  # left for its own version


def test_stream_sequence_numbers_not_understood_restart_those_streams(
    tmp_path: Path, start_agent: StartAgent
) -> None:
    sequences = tmp_path / "modules" / "telemetry" / "sequences.json"
    sequences.parent.mkdir(parents=True)
    sequences.write_text(json.dumps({"fast": "seventeen", "slow": 41}))
    process = start_agent()
    telemetry = wait_until_sync(
        lambda: (
            health(tmp_path).get("modules", {}).get("telemetry", {}).get("state") == "running"
            and health(tmp_path)["modules"]["telemetry"]
        ),
        timeout=20.0,
        what="telemetry running",
    )
    assert "not understood for fast; they start at 1" in telemetry["details"]["sequences_reset"]
    assert b"stream sequence numbers not understood" in stop(process)
