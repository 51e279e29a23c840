"""The VSS mapping file: TOML or JSON, plain or message-qualified signal names."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.can.vss import VssMappingError, load_vss_mapping, parse_vss_mapping


def test_toml_with_dotted_and_quoted_keys(tmp_path: Path) -> None:
    path = tmp_path / "vss.toml"
    path.write_text(
        'EgoSpeed = "Vehicle.Speed"\n'
        'WheelSpeeds.WheelSpeedFL = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed"\n'
        '"RadarObject.ObjectDistance" = "Vehicle.ADAS.ObstacleDetection.Distance"\n'
    )
    assert load_vss_mapping(path) == {
        "EgoSpeed": "Vehicle.Speed",
        "WheelSpeeds.WheelSpeedFL": "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed",
        "RadarObject.ObjectDistance": "Vehicle.ADAS.ObstacleDetection.Distance",
    }


def test_json_and_a_signals_table(tmp_path: Path) -> None:
    path = tmp_path / "vss.json"
    path.write_text('{"signals": {"EgoSpeed": "Vehicle.Speed"}}')
    assert load_vss_mapping(path) == {"EgoSpeed": "Vehicle.Speed"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "expected a table"),
        ({"EgoSpeed": 3}, "expected a VSS path"),
        ({"EgoSpeed": "speed"}, "expected a VSS path"),
        ({"a.b.c": "Vehicle.Speed"}, "SIGNAL or MESSAGE.SIGNAL"),
    ],
)
def test_bad_entries_say_which(data: object, reason: str) -> None:
    with pytest.raises(VssMappingError, match=reason):
        parse_vss_mapping(data, "vss.toml")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(VssMappingError, match="cannot read"):
        load_vss_mapping(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("x = = 1")
    with pytest.raises(VssMappingError, match="syntax error"):
        load_vss_mapping(bad)
