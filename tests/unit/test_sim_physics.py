"""Vehicle physics without CAN: brake lag, deceleration cap, driver, collisions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.simulator.profiles import Profile, TimeWindows, parse_window, ramps
from edge_agent.simulator.scenarios import ccrb_collision_time, get_scenario
from edge_agent.simulator.vehicle import (
    BRAKE_LAG_S,
    KMH,
    MAX_DECELERATION_MPS2,
    BrakeActuator,
    DriveScript,
    ObjectScript,
    VehicleState,
    brake_lag_step,
    initial_state,
    step,
)

DT = 0.005


def _approach(speed_kmh: float, gap_m: float, **kwargs: object) -> VehicleState:
    script = DriveScript(
        ego_speed_kmh=Profile.constant(speed_kmh),
        lead_speed_kmh=Profile.constant(0.0),
        lead_initial_gap_m=gap_m,
        **kwargs,  # type: ignore[arg-type]
    )
    return initial_state(script)


def _run(state: VehicleState, seconds: float, request: float = 0.0) -> VehicleState:
    for _ in range(round(seconds / DT)):
        state = step(state, DT, request)
    return state


def test_brake_lag_reaches_63_percent_after_its_time_constant() -> None:
    brake = BrakeActuator()
    for _ in range(round(BRAKE_LAG_S / DT)):
        brake = brake_lag_step(brake, 6.0, DT)
    assert brake.deceleration_mps2 == pytest.approx(6.0 * (1 - math.exp(-1)), rel=1e-3)


def test_lag_does_not_depend_on_the_step_size() -> None:
    coarse = brake_lag_step(BrakeActuator(), 5.0, 0.2)
    fine = BrakeActuator()
    for _ in range(200):
        fine = brake_lag_step(fine, 5.0, 0.001)
    assert coarse.deceleration_mps2 == pytest.approx(fine.deceleration_mps2, rel=1e-9)


def test_deceleration_is_capped_at_nine() -> None:
    state = _run(_approach(100.0, 500.0), 1.5, request=10.0)
    assert state.brake.deceleration_mps2 == pytest.approx(MAX_DECELERATION_MPS2, abs=0.01)
    assert state.ego.acceleration_mps2 >= -MAX_DECELERATION_MPS2
    assert state.ego.acceleration_mps2 == pytest.approx(-MAX_DECELERATION_MPS2, abs=0.01)


def test_a_braked_vehicle_decelerates_as_the_lag_predicts() -> None:
    before = _approach(100.0, 500.0)
    after = _run(before, 1.0, request=8.0)
    # Integral of 8 * (1 - exp(-t / tau)) over one second.
    lost = 8.0 * (1.0 - BRAKE_LAG_S * (1 - math.exp(-1.0 / BRAKE_LAG_S)))
    assert before.ego.speed_mps - after.ego.speed_mps == pytest.approx(lost, rel=0.01)


@pytest.mark.parametrize("speed_kmh", [10.0, 50.0, 80.0])
def test_unbraked_approach_to_a_stationary_car_hits_at_the_initial_speed(speed_kmh: float) -> None:
    state = _approach(speed_kmh, 40.0)
    expected_s = 40.0 / (speed_kmh * KMH)
    state = _run(state, expected_s + 1.0)
    assert state.collision is not None
    assert state.collision.impact_speed_kmh == pytest.approx(speed_kmh, abs=1e-6)
    assert state.collision.time_s == pytest.approx(expected_s, abs=1e-6)


def test_the_world_freezes_after_a_collision() -> None:
    state = _run(_approach(50.0, 5.0), 1.0)
    assert state.collision is not None
    later = step(state, DT, 0.0)
    assert later.ego == state.ego
    assert later.time_s == pytest.approx(state.time_s + DT)


def test_step_is_pure() -> None:
    state = _approach(60.0, 80.0)
    first, second = step(state, DT, 3.0), step(state, DT, 3.0)
    assert first == second
    assert state.time_s == 0.0
    assert state.brake == BrakeActuator()


def test_full_braking_early_enough_stops_short_and_the_driver_stays_stopped() -> None:
    state = _approach(50.0, 40.0)
    state = _run(state, 3.0, request=9.0)
    assert state.ego.speed_mps == 0.0
    assert state.collision is None
    state = _run(state, 5.0, request=0.0)  # the AEB lets go; the startled driver does not drive on
    assert state.ego.speed_mps == 0.0
    assert state.gap_m > 0


def test_driver_resumes_the_profile_when_the_scenario_says_so() -> None:
    state = _run(_approach(50.0, 400.0, resume_after_aeb_s=2.0), 3.0, request=9.0)
    state = _run(state, 1.5)
    assert state.ego.speed_mps == 0.0
    state = _run(state, 20.0)
    assert state.ego.speed_mps == pytest.approx(50.0 * KMH, abs=0.05)


def test_driver_follows_a_speed_profile_and_limits_its_acceleration() -> None:
    profile = ramps(0.0, (1.0, 36.0, 7.2))  # 0 -> 10 m/s at 2 m/s2 after 1 s
    state = initial_state(DriveScript(profile, Profile.constant(0.0), 1e6))
    state = _run(state, 4.0)
    assert state.ego.speed_mps == pytest.approx(6.0, abs=0.05)
    state = _run(state, 10.0)
    assert state.ego.speed_mps == pytest.approx(10.0, abs=0.01)


def test_a_car_in_the_next_lane_is_passed_without_collision() -> None:
    state = initial_state(get_scenario("passing-next-lane").script)
    state = _run(state, 16.0)
    assert state.gap_m < -10.0
    assert state.collision is None
    assert state.time_to_collision_s is None


def test_a_lane_change_into_the_ego_while_alongside_is_a_collision() -> None:
    script = DriveScript(
        ego_speed_kmh=Profile.constant(50.0),
        lead_speed_kmh=Profile.constant(50.0),
        lead_initial_gap_m=-2.0,
        lead_lateral_m=Profile.of((0.0, 3.5), (1.0, 3.5), (2.0, 0.0)),
    )
    state = _run(initial_state(script), 2.0)
    assert state.collision is not None
    assert state.collision.impact_speed_kmh == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("gap", "decel"), [(12, 2), (12, 6), (40, 2), (40, 6)])
def test_ccrb_collision_time_matches_the_simulation(gap: int, decel: int) -> None:
    state = _run(initial_state(get_scenario(f"ccrb-{gap}-{decel}").script), 15.0)
    assert state.collision is not None
    assert state.collision.time_s == pytest.approx(
        2.0 + ccrb_collision_time(50, gap, decel), abs=0.01
    )


def test_time_to_collision_is_gap_over_closing_speed() -> None:
    state = _approach(36.0, 50.0)
    assert state.time_to_collision_s == pytest.approx(5.0)


def test_profiles_interpolate_and_shift() -> None:
    profile = Profile.of((0.0, 0.0), (10.0, 100.0))
    assert profile.at(-1.0) == 0.0
    assert profile.at(2.5) == 25.0
    assert profile.at(11.0) == 100.0
    assert profile.slope(5.0) == 10.0
    assert profile.slope(11.0) == 0.0
    assert profile.shifted(2.0).at(4.5) == 25.0
    with pytest.raises(ValueError):
        Profile.of((1.0, 0.0), (0.0, 1.0))


def test_time_windows() -> None:
    windows = TimeWindows.of((1.0, 2.0), (5.0, math.inf))
    assert [windows.contains(t) for t in (0.5, 1.0, 1.99, 2.0, 5.0, 1e9)] == [
        False,
        True,
        True,
        False,
        True,
        True,
    ]
    with pytest.raises(ValueError):
        TimeWindows.of((2.0, 1.0))


@given(st.floats(0, 1e6), st.floats(0, 1e6))
def test_parse_window_accepts_every_well_formed_window(start: float, length: float) -> None:
    if length == 0:
        return
    end = start + length
    if end <= start:
        return
    assert parse_window(f"{start!r}:{end!r}") == (start, end)
    assert parse_window(f"{start!r}:") == (start, math.inf)


@given(st.text(max_size=20))
def test_parse_window_rejects_garbage_with_a_value_error(text: str) -> None:
    try:
        start, end = parse_window(text)
    except ValueError:
        return
    assert 0 <= start < end


def _with_traffic(*traffic: ObjectScript) -> VehicleState:
    return initial_state(
        DriveScript(
            ego_speed_kmh=Profile.constant(36.0),
            lead_speed_kmh=Profile.constant(36.0),
            lead_initial_gap_m=200.0,
            traffic=traffic,
        )
    )


def test_traffic_in_the_lane_is_hit_like_the_lead() -> None:
    parked = ObjectScript(Profile.constant(0.0), 20.0, Profile.constant(-1.2))  # 33 % overlap
    state = _run(_with_traffic(parked), 3.0)
    assert state.collision is not None
    assert state.collision.time_s == pytest.approx(2.0, abs=0.01)
    assert state.collision.impact_speed_kmh == pytest.approx(36.0, abs=0.1)


def test_objects_beside_the_lane_and_overhead_are_passed() -> None:
    shoulder = ObjectScript(Profile.constant(0.0), 20.0, Profile.constant(-2.7))
    gantry = ObjectScript(Profile.constant(0.0), 30.0, width_m=16.0, clearance_m=5.5)
    state = _with_traffic(shoulder, gantry)
    assert state.time_to_collision_s is None
    state = _run(state, 5.0)
    assert state.collision is None
    assert state.gap_to(state.traffic[1]) < -10.0


def test_the_nearest_object_in_lane_sets_ttc_and_gap() -> None:
    slow = ObjectScript(Profile.constant(18.0), 30.0)
    state = _with_traffic(slow)
    assert state.time_to_collision_s == pytest.approx(6.0)
    assert state.in_lane_gap_m == pytest.approx(30.0)
