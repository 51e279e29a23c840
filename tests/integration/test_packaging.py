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
from typing import Any

import pytest

from edge_agent.bench.broker import free_port
from fixtures.containerfile import Instruction, parse

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
        capture_output=True,
        text=True,
        check=True,
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
        env=env,
        cwd=tmp_path,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            check = subprocess.run(
                [str(wheel_env / "bin/edge-agent"), "status", "--state-dir", str(volume)],
                capture_output=True,
                text=True,
                check=False,
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
        capture_output=True,
        text=True,
        check=False,
    )
    assert after.returncode == 3
    assert after.stderr.startswith("edge-agent: no agent")


def image_layout() -> dict[str, Any]:
    """What deploy/Containerfile's runtime stage runs: argv, health check, env, paths."""
    _, stages = parse(ROOT / "deploy/Containerfile")
    runtime = stages[-1]
    entrypoint, cmd, check = (runtime.last(k) for k in ("ENTRYPOINT", "CMD", "HEALTHCHECK"))
    volume, workdir = runtime.last("VOLUME"), runtime.last("WORKDIR")
    assert entrypoint is not None
    assert cmd is not None
    assert check is not None
    assert volume is not None
    assert workdir is not None
    env: dict[str, str] = {}
    for instruction in runtime.all("ENV"):
        for word in instruction.words():
            name, _, value = word.partition("=")
            env[name] = value
    copies = {
        c.words()[-1]: ROOT / c.words()[0] for c in runtime.all("COPY") if "from" not in c.flags
    }
    return {
        "argv": entrypoint.words() + cmd.words(),
        "health": Instruction("CMD", {}, check.arguments.partition(" ")[2]).words(),
        "env": env,
        "volume": volume.words()[0],
        "workdir": workdir.arguments,
        "copies": copies,
    }


@pytest.mark.slow
def test_the_image_entry_point_config_and_volume_outside_a_container(
    wheel_env: Path, tmp_path: Path
) -> None:
    """The image's own command line, config file, environment and volume, run from the wheel.

    Paths inside the image map to a fake root under tmp_path. The one change to the image's
    config: its CAN channels (vcan0, which this kernel lacks) become python-can virtual ones.
    """
    image = image_layout()
    fake_root = tmp_path / "root"

    def host(path: str) -> str:
        return str(fake_root / path.lstrip("/")) if path.startswith("/") else path

    for target, source in image["copies"].items():
        destination = Path(host(target))
        destination.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text()
        text = text.replace('interface = "socketcan"', 'interface = "virtual"')
        destination.write_text(text.replace('channel = "vcan0"', 'channel = "bench"'))
    volume = Path(host(image["volume"]))
    volume.mkdir(parents=True)
    env = {
        **os.environ,
        **{k: host(v) if k != "PATH" else v for k, v in image["env"].items()},
        "PATH": f"{wheel_env / 'bin'}{os.pathsep}{os.environ['PATH']}",
        # No broker here: a closed port (the cloud link is offline-first).
        "EDGE_AGENT__MODULES__CLOUD-LINK__CONFIG__PORT": str(free_port()),
    }
    assert env["EDGE_AGENT__AGENT__STATE_DIR"] == str(volume)
    argv = [host(word) for word in image["argv"]]
    health = [host(word) for word in image["health"]]
    assert argv[0] == health[0] == "edge-agent"
    for attempt in ("first start", "restart on the same volume"):
        with (tmp_path / "agent.log").open("ab") as log:
            agent = subprocess.Popen(argv, env=env, cwd=host(image["workdir"]), stderr=log)
        try:
            deadline = time.monotonic() + 45
            while True:
                check = subprocess.run(health, env=env, capture_output=True, text=True, check=False)
                if check.returncode == 0 and "(ready)" in check.stdout:
                    break
                assert agent.poll() is None, (attempt, (tmp_path / "agent.log").read_text())
                assert time.monotonic() < deadline, (attempt, check.stdout, check.stderr)
                time.sleep(0.2)
            assert "pi-bench-1" in check.stdout
            for module in ("can-reader", "fast-path", "telemetry", "cloud-link"):
                assert module in check.stdout, check.stdout
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
        assert agent.returncode == 0, (attempt, (tmp_path / "agent.log").read_text())
        after = subprocess.run(health, env=env, capture_output=True, text=True, check=False)
        assert after.returncode == 3
    assert (volume / "spool").is_dir(), sorted(p.name for p in volume.iterdir())
