"""The in-path decision: the predicted ego path, lateral overlap, several objects, the driver."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modules.fast_path.ego_path import (
    lateral_clearance,
    overlap_fraction,
    path_curvature,
    path_offset,
)
from edge_agent.modules.fast_path.policy import (
    EgoSample,
    PolicyConfig,
    PolicyState,
    RadarSample,
    Stage,
    decide,
    in_path,
    time_to_contact,
)

CONFIG = PolicyConfig()
CYCLE = 0.02
EGO_WIDTH = CONFIG.ego_width_m


def test_the_path_bends_with_the_yaw_rate() -> None:
    # 20 m/s and 5.73 deg/s: a radius of 200 m, to the left.
    curvature = path_curvature(20.0, math.degrees(0.1), 0.1)
    assert curvature == pytest.approx(1 / 200)
    assert path_offset(40.0, curvature) == pytest.approx(200 - math.sqrt(200**2 - 40**2))
    assert path_offset(40.0, -curvature) == pytest.approx(-path_offset(40.0, curvature))
    assert path_offset(500.0, curvature) == pytest.approx(200.0)  # beyond a quarter turn
    assert path_curvature(0.2, 10.0, 0.1) == 0.0  # standing: the yaw rate says nothing
    assert path_curvature(1.0, 90.0, 0.1) == 0.1  # capped
    assert path_curvature(math.nan, 1.0, 0.1) == 0.0


def test_clearance_and_overlap_of_euro_ncap_offsets() -> None:
    for overlap in (100, 75, 50, 25):
        lateral = (1 - overlap / 100) * EGO_WIDTH
        for side in (1.0, -1.0):
            clearance = lateral_clearance(side * lateral, EGO_WIDTH, 30.0, 0.0, EGO_WIDTH)
            assert overlap_fraction(clearance, EGO_WIDTH) == pytest.approx(overlap / 100)
    next_lane = lateral_clearance(3.5, 1.8, 30.0, 0.0, EGO_WIDTH)
    assert next_lane == pytest.approx(1.7)
    assert overlap_fraction(next_lane, EGO_WIDTH) == 0.0


@settings(max_examples=300, deadline=None)
@given(
    lateral=st.floats(-10, 10),
    width=st.floats(0.1, 3.0),
    distance=st.floats(0, 150),
    curvature=st.floats(-0.02, 0.02),
)
def test_clearance_is_mirror_symmetric_and_grows_with_the_offset(
    lateral: float, width: float, distance: float, curvature: float
) -> None:
    here = lateral_clearance(lateral, width, distance, curvature, EGO_WIDTH)
    mirrored = lateral_clearance(-lateral, width, distance, -curvature, EGO_WIDTH)
    assert here == pytest.approx(mirrored, abs=1e-9)
    offset = lateral - path_offset(distance, curvature)
    further = lateral + math.copysign(0.5, offset)
    assert lateral_clearance(further, width, distance, curvature, EGO_WIDTH) >= here - 1e-9
    assert here >= -(width + EGO_WIDTH) / 2 - 1e-9


def _ego(speed: float = 20.0, yaw: float = 0.0, accel: float | None = 0.0) -> EgoSample:
    return EgoSample(0.0, speed, yaw_rate_dps=yaw, acceleration_mps2=accel)


def _object(distance: float, lateral: float, width: float = 1.8, **kwargs: object) -> RadarSample:
    return RadarSample(0.0, distance, -10.0, True, lateral, width, **kwargs)  # type: ignore[arg-type]


def test_a_car_ahead_is_in_path_and_one_in_the_next_lane_is_not() -> None:
    assert in_path(_object(30.0, 0.0), _ego(), CONFIG)
    assert in_path(_object(30.0, -0.9), _ego(), CONFIG)  # 50 % overlap
    assert not in_path(_object(30.0, 3.5), _ego(), CONFIG)
    assert not in_path(_object(30.0, -3.5), _ego(), CONFIG)


def test_on_a_curve_the_next_lane_can_sit_straight_ahead_but_is_not_in_path() -> None:
    """Left curve, radius 180 m: 35 m ahead the right lane's car is dead ahead of the bumper."""
    speed, radius, distance = 19.4, 180.0, 35.0
    yaw = math.degrees(speed / radius)
    road_bend = path_offset(distance, 1 / radius)
    outer_lane_car = _object(distance, -3.5 + road_bend)
    assert abs(outer_lane_car.lateral_m or 0.0) < 0.2
    assert not in_path(outer_lane_car, _ego(speed, yaw), CONFIG)
    assert in_path(outer_lane_car, _ego(speed, 0.0), CONFIG)  # a straight path would brake
    own_lane_car = _object(distance, road_bend)
    assert in_path(own_lane_car, _ego(speed, yaw), CONFIG)


def test_structures_wider_than_a_lane_are_not_obstacles() -> None:
    assert not in_path(_object(60.0, 0.0, width=6.3), _ego(), CONFIG)
    assert in_path(_object(60.0, 0.0, width=2.55), _ego(), CONFIG)  # a lorry's rear


def test_a_radar_without_lateral_position_leaves_it_to_its_own_flag() -> None:
    assert in_path(RadarSample(0.0, 30.0, -5.0), _ego(), CONFIG)


def test_a_small_overlap_counts_only_once_contact_is_near() -> None:
    """The path may still deviate: a 25 % overlap needs a short time to collision to count."""
    quarter = _object(30.0, -0.75 * EGO_WIDTH)
    assert not in_path(quarter, _ego(), CONFIG, ttc=2.0)
    assert in_path(quarter, _ego(), CONFIG, ttc=0.8)
    assert in_path(_object(30.0, 0.0), _ego(), CONFIG, ttc=2.0)


def test_time_to_contact_credits_a_falling_closing_speed() -> None:
    assert time_to_contact(20.0, 10.0, 0.0) == 2.0
    assert time_to_contact(20.0, 10.0, 2.0) == pytest.approx((10 - math.sqrt(20)) / 2)
    assert time_to_contact(3.0, 2.0, 2.0) is None  # stops after 1 m


def _run(
    frames: list[list[RadarSample]], ego: EgoSample, start: float = 0.0
) -> tuple[PolicyState, list[Stage], list[str]]:
    """Feed cycles of object frames (each cycle 20 ms) and return the stages and faults."""
    state, stages, faults = PolicyState(), [], []
    for index, cycle in enumerate(frames):
        t = start + index * CYCLE
        for frame in cycle:
            sample = dataclasses.replace(frame, time=t)
            moving = dataclasses.replace(ego, time=t)
            state, decision = decide(state, t, sample, moving, CONFIG)
            stages.append(decision.stage)
            faults.append(decision.fault)
    return state, stages, faults


def _approach(
    start: float, closing: float, cycles: int, lateral: float, object_id: int
) -> list[RadarSample]:
    return [
        RadarSample(0.0, start - closing * CYCLE * i, -closing, True, lateral, 1.8, object_id)
        for i in range(cycles)
    ]


def test_the_threat_is_the_object_in_path_whatever_else_is_nearer() -> None:
    """A stopped car 25 m ahead in the next lane, and one 45 m ahead in ours: ours counts."""
    beside = _approach(25.0, 15.0, 60, 3.5, object_id=3)
    ahead = _approach(45.0, 15.0, 60, 0.0, object_id=7)
    _, stages, faults = _run([list(pair) for pair in zip(beside, ahead, strict=True)], _ego(15.0))
    assert faults[-1] == ""
    assert Stage.PARTIAL in stages
    _, alone, _ = _run([[sample] for sample in beside], _ego(15.0))
    assert max(alone) is Stage.NONE


def test_a_new_track_id_is_a_new_object_not_a_jump() -> None:
    """A cut-out: the car 20 m ahead goes, the radar reports a far car under a new id."""
    near = [[RadarSample(0.0, 20.0, 0.0, True, 0.0, 1.8, 1)]] * 10
    far = [[RadarSample(0.0, 90.0, -3.0, True, 0.0, 1.8, 2)]] * 10
    _, _, faults = _run(near + far, _ego(20.0))
    assert set(faults[6:]) == {""}


def test_the_same_track_id_jumping_is_still_a_fault() -> None:
    near = [[RadarSample(0.0, 60.0, 0.0, True, 0.0, 1.8, 1)]] * 10
    spike = [[RadarSample(0.0, 5.0, 0.0, True, 0.0, 1.8, 1)]]
    _, stages, faults = _run(near + spike, _ego(20.0))
    assert faults[-1].startswith("radar distance jumped")
    assert stages[-1] is Stage.NONE


def test_a_driver_already_stopping_short_is_not_overruled() -> None:
    """Queue traffic: 3.4 m behind a stopped car at 2.4 m/s; the driver brakes at 2 m/s2."""
    cycles = [[RadarSample(0.0, 3.4, -2.4, True, 0.0, 1.8, 0)]] * 12
    _, stages, _ = _run(cycles, _ego(2.4, accel=-2.0))
    assert max(stages) is Stage.NONE
    _, stages, _ = _run(cycles, _ego(2.4, accel=0.0))  # not braking: the same scene brakes
    assert max(stages) >= Stage.PARTIAL
