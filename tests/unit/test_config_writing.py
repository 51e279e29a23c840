"""Configs the project writes (suite runs, test rigs) go through tomli-w and read back the same."""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config import load_config
from edge_agent.simulator.agent_process import FAST_PATH, CanChannel, agent_config
from edge_agent.simulator.rig.agent import agent_config as rig_agent_config
from edge_agent.simulator.rig.agent import config_text as rig_config_text
from edge_agent.simulator.rig.fastpath_bench import write_config as write_bench_config
from fixtures.ota_world import write_config

# Quotes, backslashes, spaces, a TOML comment sign and non-ASCII: what broke hand-written TOML.
awkward_text = st.text(alphabet=st.sampled_from(list("ab \"\\#=[]'\tzé")), min_size=1, max_size=20)


@given(awkward_text, awkward_text)
def test_a_suite_config_reads_back_as_written(directory: str, channel: str) -> None:
    written = agent_config(Path("/tmp") / directory, CanChannel("virtual", channel))
    assert tomllib.loads(tomli_w.dumps(written)) == written


def test_the_suite_config_is_a_valid_agent_config(tmp_path: Path) -> None:
    state_dir = tmp_path / 'state "quoted" \\ dir'
    path = tmp_path / "agent.toml"
    path.write_text(tomli_w.dumps(agent_config(state_dir, CanChannel("virtual", "suite"))))
    loaded = load_config(path, environ={})
    assert loaded.agent.agent.state_dir == state_dir
    assert loaded.modules[FAST_PATH].settings.isolation == "process"


def test_the_ota_rig_config_keeps_nested_tables(tmp_path: Path) -> None:
    options = {
        "metadata_url": "http://127.0.0.1:1/metadata/",
        "gate": {"stable_for_s": 1.0, "required_modules": ["bench"]},
        "hold_s": {},  # the crash tests' rig installer (fixtures.ota_holding)
    }
    path = write_config(tmp_path / "agent.toml", tmp_path / "st'ate", tmp_path / "bench", options)
    data = tomllib.loads(path.read_text())
    assert data["agent"]["state_dir"] == str(tmp_path / "st'ate")
    assert data["modules"]["ota"]["config"] == options
    assert data["modules"]["ota"]["entry_point"] == "fixtures.ota_holding:HoldingOtaInstaller"


@given(awkward_text, awkward_text, awkward_text)
def test_the_soak_rig_config_reads_back_as_written(directory: str, name: str, key: str) -> None:
    config = rig_agent_config(Path("/tmp") / directory, broker_port=1883)
    config["modules"][name] = {"config": {key: [{key: directory}]}}
    assert tomllib.loads(rig_config_text(config)) == config


@given(awkward_text, awkward_text, awkward_text)
def test_the_fastpath_bench_config_reads_back_as_written(
    directory: str, name: str, key: str
) -> None:
    extra = {name: {"config": {key: {"nested": [directory, key]}}}}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "agent.toml"
        write_bench_config(path, Path(folder) / directory, "process", False, extra_modules=extra)
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["agent"]["state_dir"] == str(Path(folder) / directory)
    assert data["modules"][name] == extra[name]


def test_the_soak_rig_config_is_a_valid_agent_config(tmp_path: Path) -> None:
    state_dir = tmp_path / 'rig "quoted" \\ dir'
    path = tmp_path / "agent.toml"
    path.write_text(rig_config_text(rig_agent_config(state_dir, broker_port=1883)))
    loaded = load_config(path, environ={})
    assert loaded.agent.agent.state_dir == state_dir
    assert {"can-reader", "fast-path", "telemetry", "cloud-link"} <= set(loaded.modules)
