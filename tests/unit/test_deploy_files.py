"""The deployment files keep their contracts: Containerfile, compose file, example configs.

No container engine can build the image here (base images come from a registry these machines
cannot reach; docs/container.md), so the Containerfile is checked as text, and
tests/integration/test_packaging.py runs what the image runs outside a container.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fixtures.containerfile import Instruction, Stage, parse

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy/Containerfile"
COMPOSE = ROOT / "deploy/compose.bench.yaml"
EXAMPLES = sorted((ROOT / "deploy/examples").glob("*.toml"))
STATE = "/var/lib/edge-agent"
CONFIG = "/etc/edge-agent/agent.toml"
SECRET_HINTS = (".pem", ".key", ".crt", ".p12", "tls", "secret", ".env", "id_rsa", "token")


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(CONTAINERFILE)[1]


def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_multi_stage_on_a_slim_multi_arch_python_base(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert stages[0].name, "the build stage is named, for COPY --from"
    for stage in stages:
        # The official python image is a manifest list for linux/amd64 and linux/arm64/v8.
        assert stage.base.startswith("docker.io/library/python:3.11-slim"), stage.base
    copies_from = [c.flags.get("from") for c in final(stages).all("COPY")]
    assert stages[0].name in copies_from
    assert not final(stages).all("RUN") or all(
        "pip install" not in r.arguments for r in final(stages).all("RUN")
    ), "the runtime stage takes the built venv, it does not install"


def test_runs_as_a_dedicated_non_root_user(stages: list[Stage]) -> None:
    user = final(stages).last("USER")
    assert user is not None
    name = user.arguments.split(":")[0].strip()
    assert name not in ("root", "0", "")
    keywords = [i.keyword for i in final(stages).instructions]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_entry_point_config_and_state_volume(stages: list[Stage]) -> None:
    stage = final(stages)
    entrypoint, cmd = stage.last("ENTRYPOINT"), stage.last("CMD")
    assert entrypoint is not None
    assert cmd is not None
    assert entrypoint.words() == ["edge-agent"]
    assert cmd.words() == ["run", "--config", CONFIG]
    volume = stage.last("VOLUME")
    assert volume is not None
    assert volume.words() == [STATE]
    env = " ".join(e.arguments for e in stage.all("ENV"))
    assert f"EDGE_AGENT__AGENT__STATE_DIR={STATE}" in env
    workdir = stage.last("WORKDIR")
    assert workdir is not None
    assert workdir.arguments == STATE
    assert stage.last("STOPSIGNAL") is not None


def test_health_check_runs_edge_agent_status(stages: list[Stage]) -> None:
    check = final(stages).last("HEALTHCHECK")
    assert check is not None
    kind, _, command = check.arguments.partition(" ")
    assert kind == "CMD"
    words = Instruction("CMD", {}, command).words()
    assert words[:2] == ["edge-agent", "status"]
    assert words[words.index("--state-dir") + 1] == STATE


def test_no_secrets_are_copied_and_sources_exist(stages: list[Stage]) -> None:
    for stage in stages:
        for copy in stage.all("COPY") + stage.all("ADD"):
            assert copy.keyword == "COPY", "ADD fetches and unpacks; use COPY"
            *sources, _target = copy.words()
            for source in sources:
                assert not any(hint in source.lower() for hint in SECRET_HINTS), source
                if "from" not in copy.flags:
                    assert (ROOT / source).exists(), source
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for pattern in ("**/*.pem", "**/*.key"):
        assert pattern in ignore


def test_the_config_in_the_image_is_a_bench_config_on_the_volume(stages: list[Stage]) -> None:
    sources = {
        copy.words()[-1]: copy.words()[0]
        for copy in final(stages).all("COPY")
        if "from" not in copy.flags
    }
    config = ROOT / sources[CONFIG]
    data = tomllib.loads(config.read_text())
    assert data["agent"]["state_dir"] == STATE


def test_a_vehicle_image_can_leave_the_simulator_out(stages: list[Stage]) -> None:
    """``--build-arg SIMULATOR=omit`` deletes what test_packaging's vehicle install deletes."""
    build = stages[0]
    assert [a.arguments for a in build.all("ARG")] == ["SIMULATOR=include"]
    install = " ".join(run.arguments for run in build.all("RUN"))
    assert "omit) rm -r /opt/edge-agent/lib/python3*/site-packages/edge_agent/simulator" in install
    assert install.index("esac") < install.index("edge-agent bench list")


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_config_passes_check_config(example: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-P", "-m", "edge_agent", "check-config", str(example)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{example}: valid" in result.stdout


def test_examples_cover_laptop_bench_and_vehicle() -> None:
    assert {e.stem for e in EXAMPLES} >= {"laptop", "bench", "vehicle"}


def test_compose_bench_contract() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with the demo extra (make test)")
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    agent = services["agent"]
    assert agent["network_mode"] == "host", "CAN interfaces live in the host's namespace"
    assert agent["build"]["dockerfile"] == "deploy/Containerfile"
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in agent["volumes"]}
    assert mounts[STATE] in compose["volumes"], "state on a named volume"
    assert (COMPOSE.parent / mounts[CONFIG]).is_file()
    assert agent["cap_drop"] == ["ALL"]
    assert agent.get("privileged") is not True
    broker = services["mosquitto"]
    assert broker["network_mode"] == "host"
    conf = (COMPOSE.parent / "mosquitto/mosquitto.conf").read_text()
    bench = tomllib.loads((COMPOSE.parent / mounts[CONFIG]).read_text())
    link = bench["modules"]["cloud-link"]["config"]
    assert f"listener {link['port']} {link['host']}" in conf
    simulator = services["simulator"]
    assert simulator["entrypoint"] == ["edge-agent-sim"]
    assert simulator["network_mode"] == "host"
    assert "simulator" in simulator["profiles"]
