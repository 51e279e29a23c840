"""The real agent and the simulator as separate processes on a real SocketCAN vcan0.

The agent runs its fast path (in a process of its own, with its own socket) and its CAN
reader on vcan0; the simulator, in the test's process, drives a scenario on the same
interface as ``edge-agent-sim suite --attach`` would (one Python start-up less: under
emulation each costs tens of seconds).
The fast path must brake for the simulator, and the CAN reader must receive its frames.
Needs vcan0: ``scripts/test-vcan`` runs it inside a VM with Debian's kernel. Timing inside
the emulated VM means nothing, so only the function is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import can
import pytest
import tomli_w

from edge_agent.discovery import installed_modules
from edge_agent.simulator.agent_process import (
    AgentFailed,
    CanChannel,
    agent_config,
    fast_path_status,
)
from edge_agent.simulator.scenarios import get_scenario
from edge_agent.simulator.suite import run_scenario
from fixtures.waiting import wait_until_sync

PYTHON = [sys.executable, "-P"]
VCAN0 = Path("/sys/class/net/vcan0")
START_TIMEOUT_S = 240.0  # the agent starts two Python processes; emulation is slow

pytestmark = [pytest.mark.socketcan, pytest.mark.slow, pytest.mark.timeout(480)]


def can_reader_table() -> dict[str, Any]:
    bus = {
        "name": "vehicle",
        "interface": "socketcan",
        "channel": "vcan0",
        "dbc": "package:edge_agent.simulator/data/vehicle.dbc",
    }
    return {"start_timeout_s": START_TIMEOUT_S, "config": {"buses": [bus]}}


def health(state_dir: Path) -> dict[str, Any]:
    try:
        snapshot: dict[str, Any] = json.loads((state_dir / "health.json").read_text())
    except (OSError, ValueError):
        return {}
    return snapshot


def wait_for_fast_path(state_dir: Path, agent: subprocess.Popen[bytes], log: Path) -> None:
    problem = ""

    def started() -> bool:
        nonlocal problem
        assert agent.poll() is None, log.read_text()
        try:
            fast_path_status(state_dir)
        except AgentFailed as error:
            problem = str(error)
            return False
        return True

    wait_until_sync(
        started,
        timeout=START_TIMEOUT_S,
        what="the fast path to start",
        details=lambda: f"{problem}\n{log.read_text()}",
        poll_s=0.2,
    )


def test_agent_brakes_for_the_simulator_and_reads_its_frames_on_vcan0(tmp_path: Path) -> None:
    if not VCAN0.exists():
        pytest.skip("no vcan0 interface: run scripts/test-vcan (a VM with a vcan kernel)")
    with_reader = "can-reader" in installed_modules()
    state_dir = tmp_path / "state"
    config = tmp_path / "agent.toml"
    settings = agent_config(
        state_dir, CanChannel("socketcan", "vcan0"), start_timeout_s=START_TIMEOUT_S
    )
    if with_reader:
        settings["modules"]["can-reader"] = can_reader_table()
    config.write_text(tomli_w.dumps(settings))
    log = tmp_path / "agent.log"
    with log.open("wb") as sink:
        agent = subprocess.Popen(
            [*PYTHON, "-m", "edge_agent", "run", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        wait_for_fast_path(state_dir, agent, log)
        ready_s = time.monotonic() - started
        # The simulator runs here, in the test's process: a process of its own, as in a car.
        with can.Bus(interface="socketcan", channel="vcan0") as vehicle:
            result = run_scenario(get_scenario("ccrs-20"), vehicle).as_dict()
        # Shown with pytest -rA: what the run looked like inside the emulated machine.
        print(f"agent ready after {ready_s:.0f} s; {json.dumps(result)}")
        # The fast path, in the agent's child process, answered the radar frames and braked.
        assert result["brake_frames"] > 0, result
        assert result["latency_samples"] > 0, result
        assert result["brake_activations"] >= 1, result
        assert fast_path_status(state_dir)["restarts"] == 0
        if with_reader:

            def vehicle_bus() -> dict[str, Any]:
                reader = health(state_dir).get("modules", {}).get("can-reader", {})
                found: dict[str, Any] = (
                    reader.get("details", {}).get("buses", {}).get("vehicle", {})
                )
                return found

            bus = wait_until_sync(
                lambda: (found := vehicle_bus()).get("frames", 0) > 1000 and found,
                timeout=30,
                what="the CAN reader's first 1000 frames on vcan0",
                poll_s=0.5,
            )
            assert bus["state"] == "up", bus
    finally:
        agent.terminate()
        agent.wait(timeout=60)
    assert agent.returncode == 0, log.read_text()
