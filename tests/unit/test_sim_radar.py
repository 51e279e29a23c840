"""The radar model and the frames the vehicle sends: noise, range, dropouts, rates, counters."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections import Counter

import pytest

from edge_agent.simulator import dbc
from edge_agent.simulator.can_io import SimulatorSession
from edge_agent.simulator.profiles import Profile, TimeWindows
from edge_agent.simulator.radar import (
    NO_OBJECT,
    NO_OBJECT_DISTANCE_M,
    Radar,
    RadarConfig,
    ego_frame,
)
from edge_agent.simulator.scenarios import get_scenario
from edge_agent.simulator.vehicle import DriveScript, ObjectScript, VehicleState, initial_state


def _world(gap_m: float, lateral_m: float = 0.0, ego_kmh: float = 36.0) -> VehicleState:
    return initial_state(
        DriveScript(
            ego_speed_kmh=Profile.constant(ego_kmh),
            lead_speed_kmh=Profile.constant(0.0),
            lead_initial_gap_m=gap_m,
            lead_lateral_m=Profile.constant(lateral_m),
        )
    )


def test_distance_noise_is_unbiased_with_a_0_2_m_deviation() -> None:
    radar = Radar(RadarConfig(), random.Random(7))
    readings = [radar.measure(_world(60.0)) for _ in range(5000)]
    distances = [r.distance_m for r in readings if r is not None]
    assert len(distances) == 5000
    assert statistics.fmean(distances) == pytest.approx(60.0, abs=0.02)
    assert statistics.stdev(distances) == pytest.approx(0.2, rel=0.05)
    speeds = [r.relative_speed_mps for r in readings if r is not None]
    assert statistics.fmean(speeds) == pytest.approx(-10.0, abs=0.01)


def test_range_is_150_m() -> None:
    radar = Radar(RadarConfig(distance_noise_m=0.0), random.Random(1))
    near = radar.measure(_world(149.0))
    far = radar.measure(_world(151.0))
    assert near is not None
    assert near.valid
    assert near.distance_m == pytest.approx(149.0)
    assert far is not None
    assert not far.valid
    assert far.distance_m == NO_OBJECT_DISTANCE_M


def test_objects_behind_or_outside_the_field_of_view_are_not_reported() -> None:
    radar = Radar(RadarConfig(), random.Random(1))
    for state in (_world(-3.0), _world(5.0, lateral_m=3.5)):
        reading = radar.measure(state)
        assert reading is not None
        assert not reading.valid


def test_in_path_flag_follows_the_lateral_offset() -> None:
    radar = Radar(RadarConfig(lateral_noise_m=0.0, azimuth_noise_deg=0.0), random.Random(1))
    ahead = radar.measure(_world(40.0, lateral_m=0.3))
    beside = radar.measure(_world(40.0, lateral_m=-3.5))
    assert ahead is not None
    assert ahead.valid
    assert ahead.in_path
    assert beside is not None
    assert beside.valid
    assert not beside.in_path
    assert beside.lateral_m == pytest.approx(-3.5)


def test_dropout_windows_silence_the_radar() -> None:
    radar = Radar(RadarConfig(dropouts=TimeWindows.of((0.0, 1.0))), random.Random(1))
    assert radar.measure(_world(40.0)) is None


def test_random_frame_loss_follows_the_probability() -> None:
    radar = Radar(RadarConfig(drop_probability=0.3), random.Random(3))
    lost = sum(radar.measure(_world(40.0)) is None for _ in range(5000))
    assert lost / 5000 == pytest.approx(0.3, abs=0.03)


def _frames_in(scenario: str, seconds: float, **kwargs: object) -> list[object]:
    frames: list[object] = []
    session = SimulatorSession(
        get_scenario(scenario), frame_sink=frames.append, epoch=0.0, **kwargs
    )  # type: ignore[arg-type]
    session.advance(seconds)
    return frames


def test_every_message_goes_out_at_its_dbc_cycle_time() -> None:
    frames = _frames_in("following-2s", 2.0)
    counts = Counter(frame.arbitration_id for frame in frames)  # type: ignore[attr-defined]
    database = dbc.load_vehicle_dbc()
    for message in database.messages:
        expected = 0 if not message.cycle_time else round(2000 / message.cycle_time)
        assert counts[message.frame_id] == expected, message.name


def test_radar_frames_carry_a_rolling_counter_and_a_valid_checksum() -> None:
    radar_id = dbc.load_vehicle_dbc().get_message_by_name(dbc.RADAR_OBJECT).frame_id
    frames = [f for f in _frames_in("ccrs-50", 1.0) if f.arbitration_id == radar_id]  # type: ignore[attr-defined]
    counters = [f.data[6] & 0x0F for f in frames]  # type: ignore[attr-defined]
    assert counters == [i % 16 for i in range(len(frames))]
    for frame in frames:
        data = bytes(frame.data)  # type: ignore[attr-defined]
        assert data[7] == dbc.frame_checksum(radar_id, data)


def test_radar_dropout_scenario_stops_radar_frames_mid_approach() -> None:
    radar_id = dbc.load_vehicle_dbc().get_message_by_name(dbc.RADAR_OBJECT).frame_id
    stamps = [
        f.timestamp
        for f in _frames_in("radar-dropout", 6.0)  # type: ignore[attr-defined]
        if f.arbitration_id == radar_id
    ]  # type: ignore[attr-defined]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert max(gaps) == pytest.approx(1.52, abs=0.021)
    assert sum(gap > 0.021 for gap in gaps) == 1


def test_the_same_seed_gives_the_same_frames() -> None:
    def payloads(seed: int) -> list[bytes]:
        return [bytes(f.data) for f in _frames_in("standard-drive", 3.0, seed=seed)]  # type: ignore[attr-defined]

    assert payloads(4) == payloads(4)
    assert payloads(4) != payloads(5)


def _scene(*objects: ObjectScript, curvature: float = 0.0, ego_kmh: float = 72.0) -> VehicleState:
    return initial_state(
        DriveScript(
            ego_speed_kmh=Profile.constant(ego_kmh),
            lead_speed_kmh=Profile.constant(0.0),
            lead_initial_gap_m=0.0,
            lead_lateral_m=Profile.constant(1000.0),  # no lead: only the objects below
            road_curvature_per_m=Profile.constant(curvature),
            traffic=objects,
        )
    )


def _still(
    gap: float, lateral: float = 0.0, width: float = 1.8, clearance: float = 0.0
) -> ObjectScript:
    return ObjectScript(Profile.constant(0.0), gap, Profile.constant(lateral), width, clearance)


def test_several_objects_come_nearest_first_with_stable_track_ids() -> None:
    radar = Radar(RadarConfig(), random.Random(2))
    state = _scene(_still(60.0, 3.5), _still(30.0, -3.5), _still(90.0))
    first = radar.measure_all(state)
    assert first is not None
    assert [round(r.distance_m) for r in first] == [30, 60, 90]
    assert len({r.object_id for r in first}) == 3
    again = radar.measure_all(state)
    assert again is not None
    assert [r.object_id for r in again] == [r.object_id for r in first]
    assert [r.width_m for r in first] == pytest.approx([1.8, 1.8, 1.8], abs=0.4)


def test_an_id_freed_by_an_object_that_left_is_reused_last() -> None:
    radar = Radar(RadarConfig(), random.Random(2))
    both = radar.measure_all(_scene(_still(30.0), _still(60.0, 3.5)))
    one = radar.measure_all(_scene(_still(60.0, 1000.0), _still(60.0, 3.5)))
    new = radar.measure_all(_scene(_still(20.0, -3.5), _still(60.0, 3.5)))
    assert both is not None
    assert one is not None
    assert new is not None
    assert one[0].object_id == both[1].object_id  # the one still there keeps its id
    assert new[0].object_id not in {r.object_id for r in both}


def test_a_car_right_behind_another_is_hidden_until_it_moves_aside() -> None:
    radar = Radar(RadarConfig(), random.Random(2))
    hidden = radar.measure_all(_scene(_still(30.0), _still(80.0)))
    shown = radar.measure_all(_scene(_still(30.0, 3.5), _still(80.0)))
    assert hidden is not None
    assert shown is not None
    assert [round(r.distance_m) for r in hidden] == [30]
    assert [round(r.distance_m) for r in shown] == [30, 80]


def test_no_more_than_max_objects_and_one_frame_for_none() -> None:
    radar = Radar(RadarConfig(max_objects=4), random.Random(2))
    posts = [_still(10.0 + 10 * i, -4.0, width=0.2) for i in range(12)]
    readings = radar.measure_all(_scene(*posts))
    assert readings is not None
    assert len(readings) == 4
    assert radar.measure_all(_scene()) == (NO_OBJECT,)


def test_a_gantry_is_seen_from_afar_and_lost_overhead() -> None:
    radar = Radar(RadarConfig(), random.Random(2))
    far = radar.measure_all(_scene(_still(100.0, width=16.0, clearance=5.5)))
    near = radar.measure_all(_scene(_still(20.0, width=16.0, clearance=5.5)))
    assert far is not None
    assert near is not None
    assert far[0].valid
    assert far[0].width_m > 6.3  # the DBC signal clamps it to 6.3: "6.3 m or wider"
    assert near == (NO_OBJECT,)


def test_on_a_curve_the_next_lane_appears_ahead_of_the_bumper() -> None:
    state = _scene(_still(35.0, -3.5), curvature=1 / 180)
    x, y = ego_frame(state, state.traffic[0])
    assert x == pytest.approx(35.0, abs=0.5)
    assert y == pytest.approx(-3.5 + 35.0**2 / 360, abs=0.1)
    straight = _scene(_still(35.0, -3.5))
    assert ego_frame(straight, straight.traffic[0]) == (35.0, -3.5)


def test_lateral_noise_grows_with_range() -> None:
    config = RadarConfig(lateral_noise_m=0.05, azimuth_noise_deg=0.1)
    radar = Radar(config, random.Random(5))

    def spread(gap: float) -> float:
        values = []
        for _ in range(2000):
            readings = radar.measure_all(_scene(_still(gap)))
            assert readings is not None
            values.append(readings[0].lateral_m)
        return statistics.stdev(values)

    assert spread(10.0) == pytest.approx(0.05, rel=0.15)
    assert spread(140.0) == pytest.approx(
        math.hypot(0.05, 140 * math.tan(math.radians(0.1))), rel=0.15
    )
