"""The fast path in its own process, with its own CAN socket, talking to a separate vehicle.

Runs the real agent and the vehicle side as separate processes sharing a CAN channel through
python-can's udp_multicast inside a network namespace the test creates (so the multicast
never reaches a real network).
Timing is the benchmark's business (`edge-agent bench fastpath`); this proves the wiring.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_agent.simulator.rig.fastpath_bench import write_config
from edge_agent.simulator.rig.netns import (
    CHANNEL,
    NamespaceUnavailable,
    in_namespace,
    multicast_namespace,
)
from fixtures.waiting import wait_until_sync

PYTHON = [sys.executable, "-P"]


def health(state_dir: Path) -> dict[str, Any]:
    try:
        snapshot: dict[str, Any] = json.loads((state_dir / "health.json").read_text())
    except (OSError, ValueError):
        return {}
    return snapshot


def test_fast_path_process_brakes_for_a_vehicle_in_another_process(tmp_path: Path) -> None:
    try:
        namespace_context = multicast_namespace("ea-test")
        namespace = namespace_context.__enter__()
    except NamespaceUnavailable as error:
        pytest.skip(f"SKIPPED LOUDLY: no network namespace here: {error}")
    try:
        state_dir = tmp_path / "state"
        config = tmp_path / "agent.toml"
        write_config(config, state_dir, isolation="process", load=False)
        log_path = tmp_path / "agent.log"
        with log_path.open("wb") as log:
            agent = subprocess.Popen(
                in_namespace(
                    namespace, [*PYTHON, "-m", "edge_agent", "run", "--config", str(config)]
                ),
                stderr=log,
            )
        try:

            def ready() -> bool:
                assert agent.poll() is None, log_path.read_text()
                return bool(health(state_dir).get("agent", {}).get("ready"))

            wait_until_sync(ready, timeout=30, what="the agent ready")
            fast_path = health(state_dir)["modules"]["fast-path"]
            child_pid = fast_path["details"]["pid"]
            assert child_pid != agent.pid
            sender = subprocess.run(
                in_namespace(
                    namespace,
                    [
                        *PYTHON,
                        "-m",
                        "edge_agent.simulator.rig.radar_sender",
                        "--channel",
                        CHANNEL,
                        "--rate",
                        "100",
                        "--seconds",
                        "3",
                    ],
                ),
                capture_output=True,
                check=True,
                timeout=60,
            )
            counts = json.loads(sender.stdout)
            # every radar frame is answered by one brake frame (a few may be in flight at the end)
            assert counts["brake_frames"] >= counts["radar_frames"] * 0.95

            def latency_counted() -> dict[str, Any] | None:
                found: dict[str, Any] = health(state_dir)["modules"]["fast-path"]["details"]
                counted = found.get("latency_ms", {}).get("count", 0)
                return found if counted >= counts["radar_frames"] * 0.95 else None

            details = wait_until_sync(
                latency_counted, timeout=10, what="a latency for 95 % of the radar frames"
            )
            assert details["stage"] == "none"
            assert details["fault"] == ""
            assert details["latency_ms"]["p50_ms"] > 0
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
        assert agent.returncode == 0
    finally:
        namespace_context.__exit__(None, None, None)
