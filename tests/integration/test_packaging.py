"""The distribution installs as a wheel into a fresh environment and runs from there.

This is also everything the OCI image does (deploy/Containerfile's build stage installs the
wheel into a venv; its entry point is `edge-agent run`; its health check is `edge-agent
status`), exercised outside a container because the machines here have no container engine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest

from edge_agent.simulator.rig.broker import free_port
from fixtures.containerfile import Instruction, parse
from fixtures.waiting import wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
# pytest-timeout counts fixture set-up: the first test to use wheel_env or vehicle_env also
# builds the wheel and a venv (90 s on the shared 2-CPU machine, 120 s in all with the test).
pytestmark = pytest.mark.timeout(360)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built wheel of the project."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheels = list(work.glob("edge_agent-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def install(wheel: Path, env_dir: Path) -> Path:
    """A fresh venv at ``env_dir`` with ``wheel`` installed; its site-packages."""
    venv.EnvBuilder(with_pip=True).create(env_dir)
    subprocess.run(
        [str(env_dir / "bin/python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    return next((env_dir / "lib").glob("python3*/site-packages"))


@pytest.fixture(scope="module")
def wheel_env(wheel: Path) -> Path:
    """A fresh venv with the project installed from a freshly built wheel."""
    env_dir = wheel.parent / "venv"
    install(wheel, env_dir)
    return env_dir


@pytest.fixture(scope="module")
def vehicle_env(wheel: Path) -> Path:
    """The wheel installed as a vehicle would keep it: the simulator package deleted."""
    env_dir = wheel.parent / "vehicle-venv"
    site = install(wheel, env_dir)
    # What deploy/Containerfile removes from the image: the fleet back end always, the
    # simulator with `--build-arg SIMULATOR=omit`.
    shutil.rmtree(site / "edge_agent/simulator")
    shutil.rmtree(site / "edge_agent/fleet")
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
    assert (site / "edge_agent/simulator/rig/radar_sender.py").is_file()
    benchmarks = subprocess.run(
        [str(wheel_env / "bin/edge-agent"), "bench", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert {row["name"] for row in json.loads(benchmarks.stdout)} == {
        *(
            "bus",
            "spool",
            "ingest",
            "batch",
            "uplink",
            "fastpath",
            "drain",
            "ids",
            "diag",
            "reconnect",
            "fleet",
            "fleet-worker",
        )
    }


@pytest.mark.slow
def test_a_vehicle_install_works_without_the_simulator(vehicle_env: Path, tmp_path: Path) -> None:
    """Version, modules, check-config and bench list run; the rig's benchmarks are gone."""
    site = next((vehicle_env / "lib").glob("python3*/site-packages"))
    assert not (site / "edge_agent/simulator").exists()
    assert not (site / "edge_agent/fleet").exists()
    assert (site / "edge_agent/modules/can_reader").is_dir()

    def edge_agent(*args: str, status: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(vehicle_env / "bin/edge-agent"), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == status, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    assert edge_agent("--version").stdout.startswith("edge-agent ")

    modules = json.loads(edge_agent("modules", "--json").stdout)
    assert {"heartbeat", "can-reader", "fast-path", "telemetry"} <= {m["name"] for m in modules}
    assert not [m for m in modules if m["error"]], modules

    # The example names the simulator's DBC: without the simulator that is one clear line.
    example = ROOT / "deploy/examples/vehicle.toml"
    as_shipped = edge_agent("check-config", str(example), status=2)
    assert "package 'edge_agent.simulator' is not installed" in as_shipped.stderr
    # With the vehicle's own DBC, as the example's comment says, it is valid.
    own_dbc = tmp_path / "powertrain.dbc"
    shutil.copyfile(ROOT / "simulator/data/vehicle.dbc", own_dbc)
    config = tmp_path / "agent.toml"
    simulator_dbc = "package:edge_agent.simulator/data/vehicle.dbc"
    config.write_text(example.read_text().replace(simulator_dbc, str(own_dbc)))
    assert f"{config}: valid" in edge_agent("check-config", str(config)).stdout

    listed = json.loads(edge_agent("bench", "list", "--json").stdout)
    # fastpath, drain, ids and diag live with the simulator's rig; the others need only the
    # runtime and the modules (ingest and uplink take --dbc / --log there, the simulator gone;
    # reconnect, the cloud link's, says in one line that it needs the simulator's broker).
    assert {row["name"] for row in listed} == {
        *("bus", "spool", "ingest", "batch", "uplink", "reconnect")
    }
    no_broker = edge_agent("bench", "reconnect", status=2)
    assert "needs the simulator's private broker" in no_broker.stderr
    assert "fastpath" not in edge_agent("bench", "--list").stdout
    gone = edge_agent("bench", "fastpath", status=2)
    assert gone.stderr.startswith("edge-agent: bench: unknown benchmark 'fastpath'")
    bus = json.loads(
        edge_agent("bench", "bus", "--messages", "200", "--runs", "1", "--json").stdout
    )
    assert bus["drops"] == 0
    no_drive = edge_agent("bench", "uplink", status=2)
    assert "pass --log LOG --dbc FILE" in no_drive.stderr


@pytest.mark.slow
def test_the_runtime_closure_has_structlog_but_not_rich_or_pygments(wheel_env: Path) -> None:
    # What the OCI image holds: structlog's pretty tracebacks (rich, pygments) stay out of it.
    found = subprocess.run(
        [
            str(wheel_env / "bin/python"),
            "-c",
            "import importlib.util as u; print([n for n in ('structlog', 'rich', 'pygments')"
            " if u.find_spec(n)])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "['structlog']"


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
        checks: list[subprocess.CompletedProcess[str]] = []

        def running() -> subprocess.CompletedProcess[str] | None:
            check = subprocess.run(
                [str(wheel_env / "bin/edge-agent"), "status", "--state-dir", str(volume)],
                capture_output=True,
                text=True,
                check=False,
            )
            checks.append(check)
            assert check.returncode in (0, 3), check.stderr  # 3: not running (yet)
            return check if check.returncode == 0 else None

        check = wait_until_sync(
            running,
            timeout=30,
            what="edge-agent status to find the agent",
            details=lambda: checks[-1].stderr,
            poll_s=0.2,
        )
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
def health_check_ready(
    health: list[str],
    env: dict[str, str],
    agent: subprocess.Popen[bytes],
    log: Path,
    attempt: str,
) -> subprocess.CompletedProcess[str]:
    """Run the image's health check until it says ready; its last result."""
    checks: list[subprocess.CompletedProcess[str]] = []

    def ready() -> subprocess.CompletedProcess[str] | None:
        check = subprocess.run(health, env=env, capture_output=True, text=True, check=False)
        checks.append(check)
        assert agent.poll() is None, (attempt, log.read_text())
        return check if check.returncode == 0 and "(ready)" in check.stdout else None

    return wait_until_sync(
        ready,
        timeout=45,
        what=f"the image's health check to say ready ({attempt})",
        details=lambda: (checks[-1].stdout, checks[-1].stderr),
        poll_s=0.2,
    )


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
            check = health_check_ready(health, env, agent, tmp_path / "agent.log", attempt)
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
