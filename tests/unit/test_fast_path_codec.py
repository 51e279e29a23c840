"""The fast path's codec: the radar's new fields, and DBCs that do not have them."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.modules.fast_path.codec import CodecError, FastPathCodec
from edge_agent.modules.fast_path.config import FastPathSignals
from edge_agent.simulator import dbc

OLD_RADAR = """VERSION ""
BS_:
BU_: RADAR ESC AGENT
BO_ 160 AebBrakeRequest: 8 AGENT
 SG_ AebDecelRequest : 0|16@1+ (0.01,0) [0|10] "m/s2" ESC
 SG_ AebStage : 16|4@1+ (1,0) [0|3] "" ESC
 SG_ AebCounter : 48|4@1+ (1,0) [0|15] "" ESC
BO_ 176 RadarObject: 8 RADAR
 SG_ ObjectDistance : 0|16@1+ (0.01,0) [0|250] "m" AGENT
 SG_ ObjectRelativeSpeed : 16|16@1- (0.01,0) [-100|100] "m/s" AGENT
 SG_ ObjectValid : 40|1@1+ (1,0) [0|1] "" AGENT
 SG_ ObjectInPath : 41|1@1+ (1,0) [0|1] "" AGENT
BO_ 256 EgoMotion: 8 ESC
 SG_ EgoSpeed : 0|16@1+ (0.01,0) [0|300] "km/h" AGENT
"""


def test_radar_frames_carry_position_width_and_track() -> None:
    codec = FastPathCodec(dbc.vehicle_dbc_path(), FastPathSignals())
    radar = dbc.MessageEncoder(dbc.load_vehicle_dbc().get_message_by_name(dbc.RADAR_OBJECT))
    payload = radar.encode(
        {
            "ObjectDistance": 42.5,
            "ObjectRelativeSpeed": -7.25,
            "ObjectLateralPosition": -0.9,
            "ObjectValid": 1,
            "ObjectInPath": 0,  # the radar's own guess: not used by default
            "ObjectWidth": 9.0,  # clamped to the signal's 6.3
            "ObjectId": 11,
        }
    )
    sample = codec.radar_sample(payload, 3.5)
    assert sample.time == 3.5
    assert (sample.distance_m, sample.relative_speed_mps) == (42.5, -7.25)
    assert sample.lateral_m == pytest.approx(-0.9)
    assert sample.width_m == pytest.approx(6.3)
    assert sample.object_id == 11
    assert sample.valid
    assert codec.decode_radar(payload) == (42.5, -7.25, True)


def test_ego_frames_carry_yaw_rate_and_acceleration() -> None:
    codec = FastPathCodec(dbc.vehicle_dbc_path(), FastPathSignals())
    ego = dbc.MessageEncoder(dbc.load_vehicle_dbc().get_message_by_name(dbc.EGO_MOTION))
    sample = codec.ego_sample(
        ego.encode({"EgoSpeed": 72.0, "YawRate": -3.5, "LongitudinalAccel": -2.0}), 1.0
    )
    assert sample.speed_mps == pytest.approx(20.0)
    assert sample.yaw_rate_dps == pytest.approx(-3.5)
    assert sample.acceleration_mps2 == pytest.approx(-2.0)


def test_a_dbc_without_the_new_signals_works_when_told(tmp_path: Path) -> None:
    old = tmp_path / "old.dbc"
    old.write_text(OLD_RADAR)
    with pytest.raises(CodecError, match="lacks signals"):
        FastPathCodec(old, FastPathSignals())
    signals = FastPathSignals(
        in_path="ObjectInPath",
        lateral=None,
        width=None,
        object_id=None,
        yaw_rate=None,
        acceleration=None,
    )
    codec = FastPathCodec(old, signals)
    message = codec.radar
    payload = message.encode(
        {"ObjectDistance": 30.0, "ObjectRelativeSpeed": -5.0, "ObjectValid": 1, "ObjectInPath": 0}
    )
    sample = codec.radar_sample(payload, 0.0)
    assert (sample.lateral_m, sample.width_m, sample.object_id) == (None, None, None)
    assert not sample.valid  # the radar says: not in path
    ego = codec.ego_sample(codec.ego.encode({"EgoSpeed": 36.0}), 0.0)
    assert (ego.yaw_rate_dps, ego.acceleration_mps2) == (0.0, None)


def test_an_empty_signal_name_in_the_config_means_absent() -> None:
    signals = FastPathSignals.model_validate({"lateral": "", "width": "", "object_id": ""})
    assert (signals.lateral, signals.width, signals.object_id) == (None, None, None)
    assert signals.yaw_rate == "YawRate"
