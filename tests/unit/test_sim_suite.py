"""The suite's judging and bookkeeping: targets, brake activations, round-trip latency, CLI."""

from __future__ import annotations

from pathlib import Path

import can
import pytest

from edge_agent.simulator import dbc
from edge_agent.simulator.can_io import BrakeRequestEvent
from edge_agent.simulator.cli import main
from edge_agent.simulator.scenarios import SCENARIOS, get_scenario
from edge_agent.simulator.suite import BrakeActivations, RoundTripLatency, SuiteResult
from edge_agent.simulator.suite_cli import SuiteExit
from edge_agent.simulator.targets import NO_OBSTACLE, target_for

HEADLINE = [
    "name",
    "collision",
    "impact_speed_kmh",
    "min_ttc_s",
    "brake_activations",
    "false_activation",
    "max_decision_latency_ms",
]


def brake(decel: float, stage: int = 3, counter: int = 0) -> can.Message:
    message = dbc.load_vehicle_dbc().get_message_by_name(dbc.AEB_BRAKE_REQUEST)
    data = message.encode({"AebDecelRequest": decel, "AebStage": stage, "AebCounter": counter})
    return can.Message(arbitration_id=message.frame_id, data=data, is_extended_id=False)


@pytest.mark.parametrize("name", [f"ccrs-{v}" for v in range(10, 70, 10)])
def test_stationary_targets_up_to_60_must_be_avoided(name: str) -> None:
    target = target_for(get_scenario(name))
    assert target.max_impact_kmh is None
    assert target.misses(True, 3.0, 1) == ["collision at 3.0 km/h"]
    assert target.misses(False, None, 1) == []
    assert target.misses(False, None, 0) == ["the AEB never braked"]


def test_faster_stationary_targets_allow_30_percent_of_the_speed_at_impact() -> None:
    target = target_for(get_scenario("ccrs-80"))
    assert target.max_impact_kmh == pytest.approx(24.0)
    assert target.misses(True, 23.0, 1) == []
    assert target.misses(True, 25.0, 1) == ["impact at 25.0 km/h, more than 24.0 km/h"]
    assert target_for(get_scenario("ccrs-70")).max_impact_kmh == pytest.approx(21.0)
    assert target_for(get_scenario("ccrs-65-o-50")).max_impact_kmh == pytest.approx(19.5)
    assert target_for(get_scenario("ccrs-60-o75")).max_impact_kmh is None


@pytest.mark.parametrize("name", ["ccrm-80", "ccrb-12-6", "radar-dropout", "bus-flood"])
def test_moving_braking_and_fault_obstacles_must_be_avoided(name: str) -> None:
    target = target_for(get_scenario(name))
    assert target.expects_obstacle
    assert target.max_impact_kmh is None


def test_every_scenario_without_an_obstacle_must_not_brake() -> None:
    benign = [s for s in SCENARIOS.values() if not s.expects_obstacle]
    assert {s.name for s in benign} >= {"following-2s", "cut-in-safe", "standard-drive"}
    for scenario in benign:
        assert target_for(scenario) == NO_OBSTACLE
    assert NO_OBSTACLE.misses(False, None, 2) == [
        "false activation: braked 2 time(s) without an obstacle"
    ]


def test_result_puts_the_headline_keys_first() -> None:
    result = SuiteResult(
        name="x",
        collision=False,
        impact_speed_kmh=None,
        min_ttc_s=1.23456,
        brake_activations=1,
        false_activation=False,
        max_decision_latency_ms=2.34567,
        category="aeb",
        target="t",
        target_met=True,
        misses=[],
        p50_decision_latency_ms=0.5,
        latency_samples=3,
        min_gap_m=None,
        brake_frames=4,
        duration_s=8.0,
        max_pacing_lag_ms=1.5,
    )
    values = result.as_dict()
    assert list(values)[:7] == HEADLINE
    assert values["min_ttc_s"] == 1.235
    assert values["max_decision_latency_ms"] == 2.346


def test_brake_activations_count_starts_of_braking_with_the_request_timeout() -> None:
    watcher = BrakeActivations()
    assert not watcher.frame(can.Message(arbitration_id=0x100, data=bytes(8)), 0.0)
    assert watcher.frame(brake(0.0, 0), 0.00)
    assert watcher.frame(brake(9.0), 0.02)
    assert watcher.frame(brake(9.0), 0.04)  # refreshed: still the same activation
    assert watcher.activations == 1
    assert watcher.frame(brake(9.0), 0.50)  # 460 ms without a request: it had lapsed
    assert watcher.activations == 2
    assert watcher.frame(brake(0.0, 0), 0.52)
    assert watcher.frame(brake(4.0, 2), 0.54)
    assert watcher.activations == 3
    assert watcher.frames == 6


def test_round_trip_latency_counts_the_first_answer_to_each_radar_frame() -> None:
    latency = RoundTripLatency()

    def event(received: float, radar_sent: float | None) -> BrakeRequestEvent:
        return BrakeRequestEvent(0.0, received, 0.0, 0, 0, radar_sent, None)

    latency.observe(event(1.000, None))  # a brake frame before any radar frame
    latency.observe(event(1.003, 1.000))
    latency.observe(event(1.010, 1.000))  # a second answer (a timer tick): not a latency
    latency.observe(event(1.021, 1.020))
    assert latency.samples_s == pytest.approx([0.003, 0.001])
    assert latency.max_ms == pytest.approx(3.0)
    assert RoundTripLatency().max_ms is None


def test_unknown_scenario_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suite", "--only", "ccrx-55", "--attach", "--interface", "virtual"]) == 2
    assert "unknown scenario 'ccrx-55'" in capsys.readouterr().err


def test_an_out_of_range_cell_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suite", "--only", "ccrm-25", "--lockstep"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "scenario 'ccrm-25': speed 25 km/h is outside 30..80 km/h" in err


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--grid", "euro-ncap", "--only", "ccrs-50"], "--grid and --only exclude each other"),
        (["--sample", "3"], "--sample needs --grid"),
        (["--lockstep"], "--lockstep needs --grid or --only"),
        (["--report", "x"], "--report needs --grid or --lockstep"),
    ],
)
def test_grid_options_that_do_not_go_together(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["suite", *argv]) == SuiteExit.BAD_INPUT
    assert capsys.readouterr().err == f"edge-agent-sim: {problem}\n"


def test_attach_needs_an_interface(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suite", "--attach"]) == SuiteExit.BAD_INPUT
    assert "--attach needs --interface" in capsys.readouterr().err


def test_a_missing_drive_log_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.log"
    argv = ["suite", "--attach", "--interface", "virtual", "--replay", str(missing)]
    assert main(argv) == SuiteExit.BAD_INPUT
    assert f"cannot read drive log {missing}" in capsys.readouterr().err


def test_no_vcan_and_no_namespace_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("edge_agent.simulator.rig.netns.os.geteuid", lambda: 1000)
    monkeypatch.setattr("edge_agent.simulator.agent_process.vcan_present", lambda name="": False)
    monkeypatch.setattr(
        "edge_agent.simulator.agent_process.inside_network_namespace", lambda: False
    )
    assert main(["suite", "--only", "ccrs-50"]) == SuiteExit.CHANNEL_UNAVAILABLE
    err = capsys.readouterr().err
    assert "creating a network namespace needs root" in err
    assert "vcan0" in err


def test_bad_numbers_are_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suite", "--replay-speed", "0"]) == 2
    assert main(["suite", "--settle", "-1"]) == 2
    assert main(["suite", "--interface", "nonesuch"]) == 2
    assert "unknown python-can interface" in capsys.readouterr().err
