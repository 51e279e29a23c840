"""The edge-agent-sim command: listing, running, recording, and its exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import can
import pytest

from edge_agent.simulator.cli import Exit, main
from edge_agent.simulator.scenarios import SCENARIOS


def test_list_prints_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == Exit.OK
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(SCENARIOS)


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--json"]) == Exit.OK
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["name"] for row in rows} == set(SCENARIOS)
    assert all(isinstance(row["expects_obstacle"], bool) for row in rows)


def test_unknown_scenario_exits_2_listing_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--scenario", "ccrx-55"]) == Exit.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown scenario 'ccrx-55' (known: ccrs-10," in err


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("ccrs-95", "speed 95 km/h is outside 10..80 km/h"),
        ("ccrs-50-o0", "overlap 0 % is less than 5 %"),
        ("ccrb-12-9", "deceleration 9 m/s2 is outside 2..6 m/s2"),
        ("ccrm-fast", "does not parse: expected ccrm-<kmh>[-o<overlap>]"),
    ],
)
def test_out_of_range_cells_exit_2_saying_which_value(
    name: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--scenario", name]) == Exit.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"edge-agent-sim: scenario '{name}'")
    assert says in err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--scenario", "ccrs-50", "--speed", "0"],
        ["run", "--scenario", "ccrs-50", "--speed", "fast"],
        ["run", "--scenario", "ccrs-50", "--interface", "carrier-pigeon"],
        ["run", "--scenario", "ccrs-50", "--bus-off", "3:1"],
        ["run", "--scenario", "ccrs-50", "--radar-dropout", "soon"],
        ["run", "--scenario", "ccrs-50", "--flood-id", "0x800"],
        ["run", "--scenario", "ccrs-50", "--garbage-kinds", "confetti"],
        ["run", "--scenario", "ccrs-50", "--radar-drop-probability", "2"],
        ["run", "--scenario", "ccrs-50", "--speed", "nan"],
        ["run", "--scenario", "ccrs-50", "--radar-drop-probability", "nan"],
        ["suite", "--settle", "-1"],
        ["suite", "--interface", "carrier-pigeon"],
        ["record", "--scenario", "ccrs-50"],
        ["fly"],
        [],
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == Exit.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("edge-agent-sim: error: ")


def test_the_cloud_standin_also_reports_bad_arguments_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from edge_agent.simulator.cloud import main as cloud_main

    with pytest.raises(SystemExit) as stop:
        cloud_main(["summary", "--no-such-option"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("edge-agent-cloud: error: ")


def test_udp_multicast_is_refused_outside_a_network_namespace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--scenario", "ccrs-50", "--interface", "udp_multicast"]) == (
        Exit.BUS_UNAVAILABLE
    )
    assert "network namespace" in capsys.readouterr().err


def test_run_on_the_virtual_bus_prints_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "run.log"
    argv = [
        "run",
        "--scenario",
        "ccrs-20",
        "--speed",
        "inf",
        "--json",
        "--record",
        str(log),
        "--channel",
        "sim-cli-test",
        "--garbage",
        "50",
    ]
    assert main(argv) == Exit.OK
    result = json.loads(capsys.readouterr().out)
    assert result["name"] == "ccrs-20"
    assert result["collision"] is True
    assert result["impact_speed_kmh"] == pytest.approx(20.0)
    assert set(result) >= {
        "name",
        "collision",
        "impact_speed_kmh",
        "min_ttc_s",
        "brake_activations",
        "false_activation",
    }
    assert len(list(can.CanutilsLogReader(str(log)))) == result["frames_sent"]


def test_run_prints_a_readable_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--scenario", "ccrs-80", "--speed", "inf", "--seconds", "1"]) == Exit.OK
    out = capsys.readouterr().out
    assert "impact_speed_kmh       -" in out


def test_record_writes_a_candump_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "drive.log"
    argv = [
        "record",
        "--scenario",
        "standard-drive",
        "--out",
        str(out),
        "--seconds",
        "2",
        "--radar-dropout",
        "0.5:1",
        "--flood",
        "100",
        "--bus-off",
        "1.5:",
    ]
    assert main(argv) == Exit.OK
    assert "wrote" in capsys.readouterr().err
    frames = list(can.CanutilsLogReader(str(out)))
    assert frames
    assert not [f for f in frames if f.timestamp - 1_700_000_000.0 > 1.5 + 1e-6]


def test_record_rejects_a_bad_receive_jitter_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "drive.log"
    argv = ["record", "--scenario", "ccrs-10", "--out", str(out), "--receive-jitter-ms", "-2"]
    assert main(argv) == Exit.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--receive-jitter-ms: must be between 0 and 1000 ms" in err
    assert not out.exists()


def test_record_into_a_missing_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing" / "drive.log"
    assert main(["record", "--scenario", "ccrs-10", "--out", str(out)]) == Exit.BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"cannot write {out}" in err


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "edge-agent-sim"
    completed = subprocess.run(
        [str(script), "list"], capture_output=True, text=True, check=False, timeout=60
    )
    assert completed.returncode == 0
    assert "ccrb-40-6" in completed.stdout
    completed = subprocess.run(
        [str(script), "run", "--scenario", "x"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 2
