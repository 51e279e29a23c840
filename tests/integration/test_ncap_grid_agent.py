"""A sample of the Euro NCAP grid against the real agent in real time, agreeing with lock-step.

``edge-agent-sim suite --grid euro-ncap --sample 3`` starts the agent (fast path in its own
process) in a network namespace, runs three cells spread over the grid in real time, and runs
each again in lock-step in the suite's process: a cell whose two runs differ (collision,
activations, impact speed, first brakes, minimum gap beyond a few 5 ms ticks) misses its
target. Needs root (network namespaces); skipped loudly otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SIM = [sys.executable, "-P", "-m", "edge_agent.simulator.cli"]

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _needs_namespaces() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("SKIPPED LOUDLY: the suite needs root and iproute2 for a network namespace")


@pytest.mark.timeout(300)
def test_real_time_cells_agree_with_lockstep(tmp_path: Path) -> None:
    argv = ["suite", "--grid", "euro-ncap", "--sample", "3", "--interface", "udp_multicast"]
    argv += ["--json", "--fail-on-target-miss", "--report", str(tmp_path)]
    completed = subprocess.run(
        [*SIM, *argv], capture_output=True, text=True, check=False, timeout=280
    )
    results = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    assert completed.returncode == 0, completed.stderr + completed.stdout
    assert [r["name"] for r in results] == ["ccrs-10", "ccrs-40-o-75", "ccrb-40-6"]
    for result in results:
        assert result["target_met"], result
        assert not any("lock-step" in miss for miss in result["misses"]), result
        assert result["collision"] is False
        assert result["first_partial_brake_s"] is not None
        assert result["latency_samples"] > 100
    assert "3 of 3 runs met their target" in completed.stderr
    summary = json.loads((tmp_path / "euro-ncap.json").read_text())["summary"]
    assert summary["mode"] == "real time"
    assert summary["cells"] == 3
