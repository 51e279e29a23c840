"""The health file the agent writes and ``edge-agent status`` reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli.main import main
from edge_agent.health import HEALTH_FILE, HealthFile, NoAgentRunning, write_health_file


def snapshot(**agent: Any) -> dict[str, Any]:
    return {
        "agent": {
            "pid": os.getpid(),
            "version": "9.9.9",
            "vehicle_id": "car-1",
            "state": "running",
            "ready": True,
            "started_at": time.time() - 60,
            "updated_at": time.time(),
            "health_interval_s": 1.0,
            "loop_lag_ms": 0.5,
            "stragglers": [],
            **agent,
        },
        "modules": {
            "heartbeat": {
                "state": "running",
                "restarts": 2,
                "last_error": "run failed: OSError: x",
                "ok": False,
                "reason": "slow disk",
            }
        },
        "bus": [],
    }


def test_written_file_reads_back(tmp_path: Path) -> None:
    state_dir = tmp_path / "new" / "dir"
    write_health_file(state_dir, snapshot())
    assert HealthFile(state_dir).read(time.time())["agent"]["vehicle_id"] == "car-1"
    assert [p.name for p in state_dir.iterdir()] == [HEALTH_FILE], "no temporary left behind"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        ({"state": "stopped"}, "has stopped"),
        ({"updated_at": 0.0}, "no agent is answering (health file"),
        ({"pid": "x"}, "pid x from"),
    ],
)
def test_no_agent_running_says_why(tmp_path: Path, agent: dict[str, Any], message: str) -> None:
    write_health_file(tmp_path, snapshot(**agent))
    with pytest.raises(NoAgentRunning, match=re.escape(message)):
        HealthFile(tmp_path).read(time.time())


def test_gone_pid(tmp_path: Path) -> None:
    pid = dead_pid()
    write_health_file(tmp_path, snapshot(pid=pid))
    with pytest.raises(NoAgentRunning, match=f"pid {pid} from .* is gone"):
        HealthFile(tmp_path).read(time.time())


@pytest.mark.parametrize("content", ["{not json", "[]", '{"agent": 1}'])
def test_garbage_health_file(tmp_path: Path, content: str) -> None:
    (tmp_path / HEALTH_FILE).write_text(content)
    with pytest.raises(NoAgentRunning, match="no agent is running"):
        HealthFile(tmp_path).read(time.time())


def test_status_prints_a_readable_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_health_file(tmp_path, snapshot())
    assert main(["status", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"agent 9.9.9 vehicle car-1 pid {os.getpid()}: running (ready), up ")
    assert out[1].split() == [
        "heartbeat",
        "running",
        "restarts=2",
        "last_error='run",
        "failed:",
        "OSError:",
        "x'",
        "degraded:",
        "slow",
        "disk",
    ]


def test_status_json_and_config_lookup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_health_file(tmp_path, snapshot())
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\nvehicle_id = "car-1"\nstate_dir = "{tmp_path}"\n')
    assert main(["status", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["agent"]["vehicle_id"] == "car-1"


def test_status_of_a_stopped_agent_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_health_file(tmp_path, snapshot(state="stopped"))
    assert main(["status", "--state-dir", str(tmp_path)]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"edge-agent: no agent is running (the agent with pid {os.getpid()} has stopped)\n"
    )
