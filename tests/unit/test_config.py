"""Config validation through ``edge-agent check-config``: one clear line per error, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.config import (
    ConfigError,
    apply_env_overrides,
    load_config,
    read_toml,
    validate_config,
)
from edge_agent.module_api import RestartPolicy

CONFIGS = Path(__file__).resolve().parent.parent / "fixtures" / "configs"
TESTS_DIR = CONFIGS.parent.parent
EDGE_AGENT = Path(sys.executable).parent / "edge-agent"


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own EDGE_AGENT__* variables must not leak into these tests."""
    for key in list(os.environ):
        if key.startswith("EDGE_AGENT__"):
            monkeypatch.delenv(key)


def check(path: Path | str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["check-config", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("unknown_module", "modules.teleporter: unknown module 'teleporter' (installed: "),
        (
            "wrong_type",
            "agent.shutdown_timeout_s: Input should be a valid number, unable to parse string "
            "as a number (got 'soon')",
        ),
        ("unknown_key", "modules.heartbeat.restart_delay_s: unknown setting (got 5)"),
        ("missing_vehicle_id", "agent.vehicle_id: required setting is missing"),
        (
            "module_option_invalid",
            "modules.heartbeat.config.interval_s: Input should be greater than 0 (got -1)",
        ),
        (
            "requires_disabled",
            "modules.dependent: requires module 'base', which is not enabled",
        ),
        (
            "dependency_cycle",
            "modules: modules require each other in a loop: cycle_a -> cycle_b -> cycle_a",
        ),
    ],
)
def test_broken_config_gives_one_line_and_exit_2(
    name: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(CONFIGS / f"{name}.toml", capsys)
    assert code == 2
    assert out == ""
    assert err.startswith(f"edge-agent: {expected}")
    assert err.count("\n") == 1, f"expected exactly one line, got {err!r}"


def test_toml_syntax_error_names_the_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = CONFIGS / "syntax_error.toml"
    code, out, err = check(path, capsys)
    assert code == 2
    assert out == ""
    assert err.startswith(f"edge-agent: {path}: TOML syntax error: ")
    assert "line 4" in err
    assert err.count("\n") == 1


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    assert check(path, capsys) == (2, "", f"edge-agent: {path}: file not found\n")


def test_directory_instead_of_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check(tmp_path, capsys) == (
        2,
        "",
        f"edge-agent: {tmp_path}: is a directory, not a config file\n",
    )


def test_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(b'[agent]\nvehicle_id = "caf\xe9"\n')
    code, _, err = check(path, capsys)
    assert code == 2
    assert err == f"edge-agent: {path}: not UTF-8 text (bad byte at offset 25)\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", "agent: required setting is missing"),
        ('colour = "red"\n[agent]\nvehicle_id = "car-1"\n', "colour: unknown setting (got 'red')"),
        (
            '[agent]\nvehicle_id = "car 1"\n',
            "agent.vehicle_id: String should match pattern",
        ),
        (
            '[agent]\nvehicle_id = "car-1"\nlog_level = "loud"\n',
            "agent.log_level: Input should be 'debug', 'info', 'warning' or 'error' (got 'loud')",
        ),
        (
            '[agent]\nvehicle_id = "car-1"\n[modules.heartbeat]\nrestart = "sometimes"\n',
            "modules.heartbeat.restart: Input should be 'never', 'on-failure' or 'always' "
            "(got 'sometimes')",
        ),
        (
            '[agent]\nvehicle_id = "car-1"\n[modules.heartbeat]\nbackoff_initial_s = 5\n'
            "backoff_max_s = 1\n",
            "modules.heartbeat: Value error, backoff_max_s must be at least backoff_initial_s",
        ),
        (
            '[agent]\nvehicle_id = "car-1"\n[modules.heartbeat.config]\ncolour = "red"\n',
            "modules.heartbeat.config.colour: unknown setting (got 'red')",
        ),
        (
            '[agent]\nvehicle_id = "car-1"\n[modules.x]\nentry_point = "fixtures.nowhere:X"\n',
            "modules.x: module 'x' (entry point 'fixtures.nowhere:X' from the config) failed "
            "to import: ModuleNotFoundError: No module named 'fixtures.nowhere'",
        ),
        (
            '[agent]\nvehicle_id = "car-1"\n[modules.x]\n'
            'entry_point = "fixtures.misbehaving:NotAModule"\n',
            "modules.x: module 'x' (entry point 'fixtures.misbehaving:NotAModule' from the "
            "config) is not an edge_agent Module subclass",
        ),
        (
            '[agent]\nvehicle_id = "car-1"\n[modules.x]\nentry_point = "no colon"\n',
            "modules.x.entry_point: String should match pattern",
        ),
    ],
    ids=[
        "empty-file",
        "key-outside-table",
        "bad-vehicle-id",
        "bad-log-level",
        "bad-restart-policy",
        "backoff-cap-below-start",
        "unknown-module-option",
        "entry-point-not-importable",
        "entry-point-not-a-module",
        "entry-point-malformed",
    ],
)
def test_more_broken_configs(
    body: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(body)
    code, out, err = check(path, capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f"edge-agent: {expected}")
    assert err.count("\n") == 1, f"expected exactly one line, got {err!r}"


def test_every_problem_is_reported_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        '[agent]\nvehicle_id = "car-1"\n'
        "[modules.heartbeat.config]\ninterval_s = 0\n"
        "[modules.teleporter]\n"
    )
    code, _, err = check(path, capsys)
    assert code == 2
    lines = err.splitlines()
    assert (
        lines[0] == "edge-agent: modules.heartbeat.config.interval_s: Input should be greater "
        "than 0 (got 0)"
    )
    assert lines[1].startswith("modules.teleporter: unknown module 'teleporter'")
    assert len(lines) == 2


def test_valid_config_prints_a_summary_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    path = CONFIGS / "valid.toml"
    code, out, err = check(path, capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{path}: valid",
        "  vehicle_id: bench-car-7",
        "  state_dir: /tmp/edge-agent-check-config-fixture",
        "  module heartbeat 1.0.0 (required, restart=on-failure)",
        "  module base 0.0.0 (restart=always)",
        "  disabled: dependent",
    ]


def test_validated_config_has_typed_settings_and_module_options() -> None:
    loaded = load_config(CONFIGS / "valid.toml", environ={})
    assert loaded.agent.agent.shutdown_timeout_s == 5.0
    assert loaded.agent.agent.state_dir == Path("/tmp/edge-agent-check-config-fixture")
    assert list(loaded.modules) == ["heartbeat", "base"]  # disabled ones are not planned
    heartbeat = loaded.modules["heartbeat"]
    assert heartbeat.module_class.__name__ == "HeartbeatModule"
    assert heartbeat.config.model_dump() == {"interval_s": 0.5, "topic": "agent/beat"}
    assert loaded.modules["base"].settings.restart is RestartPolicy.ALWAYS
    assert loaded.source == str(CONFIGS / "valid.toml")


def test_desired_state_goes_through_the_same_validation() -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config({"agent": {"vehicle_id": "car-1", "shutdown_timeout_s": 0}})
    assert caught.value.lines() == [
        "agent.shutdown_timeout_s: Input should be greater than 0 (got 0)"
    ]


def test_cloud_link_mqtt_version_is_5_or_311_with_a_one_line_error() -> None:
    link = {"host": "broker.example", "tls": False}
    base = {"agent": {"vehicle_id": "car-1"}}
    ok = validate_config({**base, "modules": {"cloud-link": {"config": link}}})
    assert ok.modules["cloud-link"].config.mqtt_version == "5"
    legacy = {"cloud-link": {"config": {**link, "mqtt_version": "3.1.1"}}}
    assert validate_config({**base, "modules": legacy}).modules["cloud-link"].config.mqtt_version
    wrong = {"cloud-link": {"config": {**link, "mqtt_version": 4}}}
    with pytest.raises(ConfigError) as caught:
        validate_config({**base, "modules": wrong})
    (line,) = caught.value.lines()
    assert line.startswith("modules.cloud-link.config.mqtt_version: Input should be '5' or '3.1.1'")


# -- environment overrides -------------------------------------------------------------------


def test_env_overrides_set_paths_and_typed_values() -> None:
    data = read_toml(CONFIGS / "valid.toml")
    applied = apply_env_overrides(
        data,
        {
            "EDGE_AGENT__AGENT__STATE_DIR": "/data/agent",
            "EDGE_AGENT__AGENT__SHUTDOWN_TIMEOUT_S": "2.5",
            "EDGE_AGENT__MODULES__HEARTBEAT__REQUIRED": "false",
            "EDGE_AGENT__MODULES__HEARTBEAT__CONFIG__INTERVAL_S": "3",
            "EDGE_AGENT__MODULES__BASE__CONFIG__START_DELAY_S": "0.25",
            "HOME": "/root",
            "EDGE_AGENT_STATE_DIR": "/ignored",  # one underscore: not ours
            "EDGE_AGENT__": "ignored",
            "EDGE_AGENT__AGENT____LOG_LEVEL": "ignored",  # empty level
        },
    )
    assert sorted(applied) == [
        "agent.shutdown_timeout_s",
        "agent.state_dir",
        "modules.base.config.start_delay_s",
        "modules.heartbeat.config.interval_s",
        "modules.heartbeat.required",
    ]
    loaded = validate_config(data)
    assert loaded.agent.agent.state_dir == Path("/data/agent")
    assert loaded.agent.agent.shutdown_timeout_s == 2.5
    assert loaded.modules["heartbeat"].settings.required is False
    assert loaded.modules["heartbeat"].config.model_dump()["interval_s"] == 3.0
    assert loaded.modules["heartbeat"].config.model_dump()["topic"] == "agent/beat"


def test_env_override_of_a_string_that_looks_like_a_number_stays_a_string() -> None:
    data = read_toml(CONFIGS / "valid.toml")
    apply_env_overrides(data, {"EDGE_AGENT__AGENT__VEHICLE_ID": "4711"})
    assert validate_config(data).agent.agent.vehicle_id == "4711"


def test_env_override_arrays_and_quoted_strings_are_read_as_toml() -> None:
    data: dict[str, object] = {}
    apply_env_overrides(
        data,
        {
            "EDGE_AGENT__A__LIST": '["can0", "can1"]',
            "EDGE_AGENT__A__TABLE": "{ bitrate = 500000 }",
            "EDGE_AGENT__A__QUOTED": '"with spaces "',
            "EDGE_AGENT__A__PLAIN": "s3cr3t=with=equals",
        },
    )
    assert data == {
        "a": {
            "list": ["can0", "can1"],
            "table": {"bitrate": 500000},
            "quoted": "with spaces ",
            "plain": "s3cr3t=with=equals",
        }
    }


def test_env_overrides_apply_to_check_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGE_AGENT__AGENT__STATE_DIR", "/srv/edge")
    monkeypatch.setenv("EDGE_AGENT__AGENT__VEHICLE_ID", "fleet-42")
    code, out, _ = check(CONFIGS / "valid.toml", capsys)
    assert code == 0
    assert "  vehicle_id: fleet-42" in out.splitlines()
    assert "  state_dir: /srv/edge" in out.splitlines()


def test_invalid_env_override_is_reported_like_a_file_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGE_AGENT__MODULES__HEARTBEAT__CONFIG__INTERVAL_S", "often")
    code, _, err = check(CONFIGS / "valid.toml", capsys)
    assert code == 2
    assert err.startswith(
        "edge-agent: modules.heartbeat.config.interval_s: Input should be a valid number"
    )
    assert "(got 'often')" in err


# -- the real command ------------------------------------------------------------------------


def test_the_installed_command_reports_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_AGENT__")}
    env["PYTHONPATH"] = str(TESTS_DIR)
    broken = subprocess.run(
        [str(EDGE_AGENT), "check-config", str(CONFIGS / "module_option_invalid.toml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert broken.returncode == 2
    assert broken.stdout == ""
    assert broken.stderr == (
        "edge-agent: modules.heartbeat.config.interval_s: Input should be greater than 0 (got -1)\n"
    )
    valid = subprocess.run(
        [str(EDGE_AGENT), "check-config", str(CONFIGS / "valid.toml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (valid.returncode, valid.stderr) == (0, "")
    assert valid.stdout.startswith(f"{CONFIGS / 'valid.toml'}: valid\n")
