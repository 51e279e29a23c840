"""The distribution installs as a wheel into a fresh environment and runs from there.

This is also everything the OCI image does (deploy/Containerfile's build stage installs the
wheel into a venv; its entry point is `edge-agent run`; its health check is `edge-agent
status`), exercised outside a container because the machines here have no container engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project installed from a freshly built wheel."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheels = list(work.glob("edge_agent-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    subprocess.run(
        [str(env_dir / "bin/python"), "-m", "pip", "install", "-q", str(wheels[0])],
        check=True,
        capture_output=True,
    )
    return env_dir


@pytest.mark.slow
def test_wheel_has_namespaced_packages_only(wheel_env: Path) -> None:
    site = next((wheel_env / "lib").glob("python3*/site-packages"))
    assert (site / "edge_agent/modules/heartbeat").is_dir()
    assert (site / "edge_agent/simulator/data/vehicle.dbc").is_file()
    assert not (site / "modules").exists()
    assert not (site / "simulator").exists()
    listing = subprocess.run(
        [str(wheel_env / "bin/edge-agent"), "modules", "--json"],
        capture_output=True, text=True, check=True,
    )
    names = {row["name"] for row in json.loads(listing.stdout)}
    assert {"heartbeat", "fast-path"} <= names
    broken = [row for row in json.loads(listing.stdout) if row["error"]]
    assert not broken, broken


@pytest.mark.slow
def test_installed_agent_runs_and_answers_the_health_check(wheel_env: Path, tmp_path: Path) -> None:
    volume = tmp_path / "var-lib-edge-agent"
    config = tmp_path / "agent.toml"
    config.write_text('[agent]\nvehicle_id = "pi-bench-1"\n[modules.heartbeat]\nrequired = true\n')
    env = {**os.environ, "EDGE_AGENT__AGENT__STATE_DIR": str(volume)}
    agent = subprocess.Popen(
        [str(wheel_env / "bin/edge-agent"), "run", "--config", str(config)],
        env=env, cwd=tmp_path, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            check = subprocess.run(
                [str(wheel_env / "bin/edge-agent"), "status", "--state-dir", str(volume)],
                capture_output=True, text=True, check=False,
            )
            if check.returncode == 0:
                break
            assert check.returncode == 3, check.stderr
            assert time.monotonic() < deadline, check.stderr
            time.sleep(0.2)
        assert "pi-bench-1" in check.stdout
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    assert agent.returncode == 0
    after = subprocess.run(
        [str(wheel_env / "bin/edge-agent"), "status", "--state-dir", str(volume)],
        capture_output=True, text=True, check=False,
    )
    assert after.returncode == 3
    assert after.stderr.startswith("edge-agent: no agent")
