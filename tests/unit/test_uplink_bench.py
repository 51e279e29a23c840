"""``edge-agent bench uplink``: the synthetic drive, recorded drives, bad input, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cantools
import pytest

from edge_agent.can.dbc import load_dbc
from edge_agent.cli.main import main
from edge_agent.modules.telemetry.uplink_bench import telemetry_settings
from edge_agent.simulator.dbc import vehicle_dbc_path
from edge_agent.simulator.runner import record_scenario
from edge_agent.simulator.scenarios import get_scenario

DBC = "package:edge_agent.simulator/data/vehicle.dbc"
SYNTHETIC_KEYS = {"samples", "bytes", "bytes_per_sample", "json_bytes", "msgpack_bytes"}
SYNTHETIC_KEYS |= {"ratio_vs_json"}
ESTIMATOR_KEYS = SYNTHETIC_KEYS | {"log_seconds", "bytes_per_hour", "signals"}
SCHEMES = """
[agent]
vehicle_id = "vin-test"

[modules.telemetry.config]
batch_max_age_s = 2.0

[[modules.telemetry.config.streams]]
name = "motion"
signals = [
    { signal = "EgoSpeed", scheme = "periodic", period_s = 0.5 },
    { signal = "LongitudinalAccel", scheme = "on-change", deadband = 0.2, max_interval_s = 1.0 },
    { signal = "NotInTheDbc" },
]
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["bench", "uplink", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six seconds of the standard drive, recorded by the simulator as candump .log."""
    path = tmp_path_factory.mktemp("drive") / "standard-drive.log"
    record_scenario(get_scenario("standard-drive"), str(path), seconds=6.0)
    return path


def test_synthetic_drive_reports_sizes_and_baselines_of_the_same_samples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_json(capsys, "--seconds", "8")
    assert set(result) >= ESTIMATOR_KEYS
    assert result["samples"] >= 10_000
    assert result["baseline_samples"] == {"json": result["samples"], "msgpack": result["samples"]}
    assert result["signals"] == 36  # every signal the drive's frames carry
    assert result["ratio_vs_json"] == round(result["bytes"] / result["json_bytes"], 4)
    assert result["bytes_per_sample"] == round(result["bytes"] / result["samples"], 3)
    assert result["json_raw_bytes"] > result["json_bytes"]
    assert result["bytes_per_sample"] <= 2.0
    assert result["ratio_vs_json"] <= 0.15
    assert "zstd level 3" in result["baseline"]


def test_recorded_drive_gives_the_in_memory_figures(
    capsys: pytest.CaptureFixture[str], drive: Path
) -> None:
    recorded = run_json(capsys, "--log", str(drive), "--dbc", DBC)
    synthetic = run_json(capsys, "--seconds", "6")
    for key in (*SYNTHETIC_KEYS, "msgpack_raw_bytes", "batches", "signals"):
        assert recorded[key] == synthetic[key], key
    assert recorded["log_seconds"] == pytest.approx(6.0, abs=0.01)
    assert recorded["bytes_per_hour"] == pytest.approx(recorded["bytes"] * 3600 / 6.0, rel=0.01)
    assert recorded["frames"]["decoded"] == recorded["frames"]["total"] > 0


@pytest.mark.parametrize("suffix", [".kcd", ".sym"])
def test_the_same_database_as_kcd_or_sym_gives_the_same_figures(
    capsys: pytest.CaptureFixture[str], drive: Path, tmp_path: Path, suffix: str
) -> None:
    database = cantools.database.load_file(str(vehicle_dbc_path()))
    converted = tmp_path / f"vehicle{suffix}"
    converted.write_text(database.as_kcd_string() if suffix == ".kcd" else database.as_sym_string())
    with_dbc = run_json(capsys, "--log", str(drive), "--dbc", DBC)
    with_other = run_json(capsys, "--log", str(drive), "--dbc", str(converted))
    for key in ("samples", "bytes", "signals", "batches"):
        assert with_other[key] == with_dbc[key], key
    assert with_other["frames"]["decoded"] == with_dbc["frames"]["decoded"] > 0


def test_config_schemes_reduce_the_samples(
    capsys: pytest.CaptureFixture[str], drive: Path, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(SCHEMES)
    native = run_json(capsys, "--log", str(drive), "--dbc", DBC)
    schemed = run_json(capsys, "--log", str(drive), "--dbc", DBC, "--config", str(config))
    assert 0 < schemed["samples"] < native["samples"] / 20
    assert schemed["signals"] == 2
    assert set(schemed["streams"]) == {"motion"}
    assert schemed["collection"]["signals_not_in_dbc"] == ["NotInTheDbc"]
    assert schemed["collection"]["batch_max_age_s"] == 2.0
    assert schemed["baseline_samples"]["json"] == schemed["samples"]
    assert schemed["batches"] >= 3  # cut by age every 2 s over a 6 s drive


def test_malformed_lines_and_wrong_lengths_are_counted(
    capsys: pytest.CaptureFixture[str], drive: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged.log"
    lines = drive.read_text().splitlines()
    lines[10:10] = [
        "garbage",
        "(1700000000.100000) vcan0 100#0011",  # EgoMotion with 2 of its 8 bytes
        "(1700000000.100000) vcan0 7FF#00",  # an id the DBC lacks
        "(1700000000.100000) vcan0 XYZ#00",
        "(1700000000.100000) vcan0 100#00112233445566778899",  # 10 bytes in a classic frame
    ]
    damaged.write_text("\n".join(lines) + "\n")
    result = run_json(capsys, "--log", str(damaged), "--dbc", DBC)
    assert result["log"]["malformed"] == 3
    assert result["frames"]["wrong_length"] == 1
    assert result["frames"]["short"] == 1
    assert result["frames"]["unknown_id"] == 1
    assert result["frames"]["decoded"] == len(lines) - 5


def test_a_partly_broken_dbc_is_counted(
    capsys: pytest.CaptureFixture[str], drive: Path, tmp_path: Path
) -> None:
    text = vehicle_dbc_path().read_text()
    broken = tmp_path / "broken.dbc"
    # Break the BodyStatus block: its frames become unknown ids, everything else decodes.
    broken.write_text(
        text.replace("SG_ DoorOpenFL : 0|1@1+ (1,0) [0|1]", "SG_ DoorOpenFL : 0|1@1+ (1,0) [0|1")
    )
    result = run_json(capsys, "--log", str(drive), "--dbc", str(broken))
    assert result["dbc"]["skipped"] >= 1
    assert result["dbc"]["strict"] is False
    assert result["frames"]["unknown_id"] > 0
    assert result["frames"]["unknown_ids"] == 1
    assert result["signals"] == 28  # 36 less BodyStatus's 8


def test_text_form_is_a_short_table(capsys: pytest.CaptureFixture[str], drive: Path) -> None:
    code, out, err = run(capsys, "--log", str(drive), "--dbc", DBC, "--hours-per-day", "1.5")
    assert code == 0, err
    assert "MB/month" in out
    assert "samples/s" in out
    assert "1.5 h/day, 30 days" in out
    assert len(out.splitlines()) < 20
    assert not out.lstrip().startswith("{")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--log", "missing.log", "--dbc", DBC], "missing.log: file not found"),
        (["--log", "LOG", "--dbc", "missing.dbc"], "missing.dbc: file not found"),
        (["--log", "LOG", "--dbc", "EMPTY"], "no message definitions"),
        (["--log", "LOG"], "--log needs --dbc"),
        (["--dbc", DBC], "--dbc goes with --log"),
        (["--log", "JUNK", "--dbc", DBC], "nothing in"),
        (["--log", "LOG", "--dbc", DBC, "--config", "BADCONFIG"], "batch_max_samples"),
        (["--log", "LOG", "--dbc", DBC, "--config", "NOTELEMETRY"], "no [modules.telemetry]"),
        (["--hours-per-day", "0"], "--hours-per-day"),
        (["--log", "drive.pcap", "--dbc", DBC], "unknown log kind"),
    ],
)
def test_unusable_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
    drive: Path,
    tmp_path: Path,
    argv: list[str],
    expected: str,
) -> None:
    (tmp_path / "empty.dbc").write_text('VERSION ""\n')
    (tmp_path / "junk.log").write_text("not a frame\n(1.0) vcan0 7FF#00\n")
    (tmp_path / "bad.toml").write_text("[modules.telemetry.config]\nbatch_max_samples = 0\n")
    (tmp_path / "none.toml").write_text('[agent]\nvehicle_id = "v"\n')
    (tmp_path / "drive.pcap").write_text("")
    replace = {
        "LOG": str(drive),
        "EMPTY": str(tmp_path / "empty.dbc"),
        "JUNK": str(tmp_path / "junk.log"),
        "BADCONFIG": str(tmp_path / "bad.toml"),
        "NOTELEMETRY": str(tmp_path / "none.toml"),
        "drive.pcap": str(tmp_path / "drive.pcap"),
        "missing.log": str(tmp_path / "missing.log"),
        "missing.dbc": str(tmp_path / "missing.dbc"),
    }
    code, out, err = run(capsys, *(replace.get(arg, arg) for arg in argv))
    assert code == 2
    assert out == ""
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_the_documented_long_batch_config_keeps_every_signal_the_drive_carries() -> None:
    path = Path(__file__).resolve().parents[2] / "docs" / "uplink" / "long-batches.toml"
    settings = telemetry_settings(str(path))
    database = load_dbc(vehicle_dbc_path()).database
    sent = {
        signal.name
        for message in database.messages
        if message.name != "AebBrakeRequest"  # the agent sends it, the vehicle does not
        for signal in message.signals
    }
    (stream,) = settings.config.streams
    assert {rule.signal for rule in stream.signals} == sent
    assert all(rule.scheme == "all" for rule in stream.signals)
    assert (settings.config.batch_max_samples, settings.config.batch_max_age_s) == (50_000, 60.0)
