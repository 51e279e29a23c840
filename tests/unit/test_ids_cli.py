"""``edge-agent ids train`` and ``ids scan``: the JSON shape, one-line errors, labelled attacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.simulator.attacks import AttackKind, mutate
from fixtures.ids_traffic import Frame, clean_traffic


def write_log(path: Path, frames: list[Frame]) -> Path:
    lines = [f"({t:.6f}) vcan0 {key:03X}#{data.hex().upper()}\n" for t, key, data, _ in frames]
    path.write_text("".join(lines))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    log = write_log(tmp_path / "clean.log", clean_traffic(30.0, seed=1))
    profile = tmp_path / "bus.json"
    code, out, err = run(capsys, "ids", "train", str(log), "--out", str(profile))
    assert code == 0, err
    assert "3 periodic" in out
    return profile


def test_scan_json_has_the_documented_shape(
    tmp_path: Path, trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    attacked, labels = mutate(clean_traffic(60.0, seed=2), AttackKind.FLOODING, windows=3)
    log = write_log(tmp_path / "attacked.log", attacked)
    code, out, err = run(capsys, "ids", "scan", str(log), "--profile", str(trained), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert {"frames", "alerts_total", "alerts", "incidents"} <= set(result)
    assert result["frames"] == len(attacked)
    assert result["alerts_total"] == len(result["alerts"]) > 0
    assert result["incidents"] >= len(labels)
    for alert in result["alerts"]:
        assert set(alert) == {"t", "kind", "can_id", "severity", "detail"}
    flooding = [a for a in result["alerts"] if a["kind"] == "flooding"]
    assert len(flooding) == len(labels)
    for alert, label in zip(flooding, labels, strict=True):
        assert label.start_s <= alert["t"] <= label.end_s


def test_clean_scan_in_text(
    tmp_path: Path, trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "clean2.log", clean_traffic(30.0, seed=3))
    code, out, _ = run(capsys, "ids", "scan", str(log), "--profile", str(trained))
    assert code == 0
    assert ", 0 alerts, 0 incidents" in out


def test_bad_profile_and_bad_log_are_one_line_errors(
    tmp_path: Path, trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = json.loads(trained.read_text())
    edited["profile"]["frames"] = 1
    bad = tmp_path / "edited.json"
    bad.write_text(json.dumps(edited))
    log = write_log(tmp_path / "clean.log", clean_traffic(1.0))
    code, _, err = run(capsys, "ids", "scan", str(log), "--profile", str(bad))
    assert code != 0
    assert err.count("\n") == 1
    assert "edited by hand" in err
    code, _, err = run(capsys, "ids", "scan", str(tmp_path / "x.log"), "--profile", str(trained))
    assert code != 0
    assert err.count("\n") == 1
    assert "file not found" in err


def test_every_attack_kind_comes_with_labels() -> None:
    clean = clean_traffic(120.0, seed=4)
    for kind in AttackKind:
        attacked, labels = mutate(clean, kind, windows=5, seed=1)
        assert len(labels) == 5
        assert all(label.kind is kind and label.start_s < label.end_s for label in labels)
        assert attacked != clean
        assert mutate(clean, kind, windows=5, seed=1) == (attacked, labels)  # seeded


def test_sim_attack_writes_a_drive_and_labels(tmp_path: Path) -> None:
    from edge_agent.simulator.cli import main as sim_main

    out, labels = tmp_path / "a.log", tmp_path / "a.json"
    argv = ["attack", "--scenario", "following-2s", "--kind", "injection", "--windows", "2"]
    assert sim_main([*argv, "--out", str(out), "--labels", str(labels)]) == 0
    written = json.loads(labels.read_text())
    assert written["kind"] == "injection"
    assert len(written["windows"]) == 2
    assert out.read_text().startswith("(")
    bad = ["attack", "--log", str(tmp_path / "none.log"), "--kind", "fuzzing"]
    assert sim_main([*bad, "--out", str(out), "--labels", str(labels)]) == 2


def test_bench_scoring_counts_detections_delays_and_strays() -> None:
    from edge_agent.modules.can_ids.alerts import Alert, AlertKind
    from edge_agent.simulator.attacks import AttackLabel
    from edge_agent.simulator.rig.ids_bench import score

    labels = [
        AttackLabel(AttackKind.INJECTION, 10.0, 11.0, 0x100),
        AttackLabel(AttackKind.INJECTION, 30.0, 31.0, 0x180),
    ]
    alerts = [
        Alert(10.02, AlertKind.INJECTION, 0x100, ""),
        Alert(12.5, AlertKind.MASQUERADE, 0x100, ""),  # the attack's tail
        Alert(20.0, AlertKind.INJECTION, 0x300, ""),  # false
        Alert(30.5, AlertKind.INJECTION, 0x300, ""),  # another id: false too
    ]
    caught: dict[str, int] = {}
    delays, stray = score(alerts, labels, frozenset({AlertKind.INJECTION}), caught)
    assert delays[0] == pytest.approx(0.02)
    assert delays[1] is None
    assert stray == 2
    assert caught == {"injection": 1}


def test_bench_on_a_recording_gives_false_alerts_and_detection_per_kind(tmp_path: Path) -> None:
    from edge_agent.simulator.rig.ids_bench import recording_figures

    log = write_log(tmp_path / "drive.log", clean_traffic(80.0, seed=9))
    figures = recording_figures(log)
    assert figures["frames"] == len(clean_traffic(80.0, seed=9))
    assert figures["periodic_ids"] == 3
    assert figures["false_alerts"] == 0
    attacks = figures["attacks"]
    assert set(attacks) == {kind.value for kind in AttackKind}
    for kind in ("injection", "flooding", "fuzzing", "dlc-change"):
        assert attacks[kind]["windows"] >= 3
        assert attacks[kind]["within_100ms_rate"] == 1.0
    assert attacks["spoofing"]["targets"] == ["0x100"]  # the one id with a counter
    short = write_log(tmp_path / "short.log", clean_traffic(1.0, seed=9))
    assert "only" in recording_figures(short)["error"]


def test_train_with_the_vehicle_dbc_names_counters_and_the_checksum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_agent.simulator.attack_cli import _scenario_frames

    log = write_log(tmp_path / "drive.log", _scenario_frames("cut-in-safe", seed=3))
    profile = tmp_path / "bus.json"
    dbc = "package:edge_agent.simulator/data/vehicle.dbc"
    code, out, err = run(capsys, "ids", "train", str(log), "--dbc", dbc, "--out", str(profile))
    assert code == 0, err
    # EgoMotion's and RadarObject's counters, RadarObject's checksum identified (not degraded)
    assert "2 counters, 1 checksums (0 degraded)" in out
    code, out, err = run(capsys, "ids", "scan", str(log), "--profile", str(profile), "--json")
    assert json.loads(out)["alerts_total"] == 0
