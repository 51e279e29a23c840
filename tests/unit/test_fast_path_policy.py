"""The pure obstacle/brake decision: staging, hysteresis, faults, recovery."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modules.fast_path.policy import (
    Decision,
    EgoSample,
    PolicyConfig,
    PolicyState,
    RadarSample,
    Stage,
    decide,
    required_deceleration,
    time_to_collision,
)

CONFIG = PolicyConfig()
CYCLE = 0.02


def warmed_up(distance: float = 80.0, relative: float = 0.0, ego: float = 20.0) -> PolicyState:
    """A policy that has seen enough good samples to leave its start-up fault."""
    state = PolicyState()
    for i in range(CONFIG.recovery_samples + 1):
        t = i * CYCLE
        state, decision = decide(
            state, t, RadarSample(t, distance + relative * t, relative), EgoSample(t, ego), CONFIG
        )
    assert decision.fault == ""
    return state


def step(
    state: PolicyState, t: float, distance: float, relative: float, ego: float, valid: bool = True
) -> tuple[PolicyState, Decision]:
    return decide(state, t, RadarSample(t, distance, relative, valid), EgoSample(t, ego), CONFIG)


def test_time_to_collision_and_required_deceleration() -> None:
    assert time_to_collision(20.0, -10.0, 0.3) == 2.0
    assert time_to_collision(20.0, 0.1, 0.3) is None  # opening
    assert time_to_collision(20.0, -0.2, 0.3) is None  # too slow to count as closing
    assert required_deceleration(22.0, -10.0, 2.0) == 100 / 40
    assert required_deceleration(22.0, 5.0, 2.0) == 0.0


def test_starts_in_fault_until_radar_and_ego_arrive() -> None:
    _, decision = decide(PolicyState(), 0.0, None, None, CONFIG)
    assert decision.fault == "no radar data yet"
    assert decision.decel_request_mps2 == 0.0


def warmed_up_at(distance: float, relative: float, ego: float) -> tuple[PolicyState, float]:
    """Warm up on an object already closing in, ending at ``distance``; return state and time."""
    n = CONFIG.recovery_samples + 1
    state = PolicyState()
    for i in range(n):
        t = i * CYCLE
        d = distance - relative * (n - 1 - i) * CYCLE
        state, _ = step(state, t, d, relative, ego)
    return state, (n - 1) * CYCLE


def test_stages_escalate_with_falling_time_to_collision() -> None:
    """Closing at 5 m/s from 40 m: warn, then partial, then full, in that order."""
    state, t = warmed_up_at(40.0, -5.0, 25.0)
    seen = []
    distance = 40.0
    while distance > 2.0:
        t += CYCLE
        distance -= 5.0 * CYCLE
        state, decision = step(state, t, distance, -5.0, 25.0)
        if decision.stage_changed:
            seen.append((decision.stage, round(distance / 5.0, 2)))
    assert [stage for stage, _ in seen] == [Stage.WARN, Stage.PARTIAL, Stage.FULL]
    assert seen[0][1] <= CONFIG.warn_ttc_s
    assert decision.decel_request_mps2 == CONFIG.full_decel


def test_high_required_deceleration_brakes_even_with_long_ttc() -> None:
    # 30 m/s closing at 55 m: TTC 1.83 s (above partial) but 30^2 / (2 * 53) = 8.5 m/s2 needed
    state, t = warmed_up_at(55.0, -30.0, 30.0)
    state, decision = step(state, t + CYCLE, 55.0 - 30.0 * CYCLE, -30.0, 30.0)
    assert decision.stage is Stage.FULL


def test_partial_request_scales_with_need_and_is_capped() -> None:
    state, t = warmed_up_at(36.0, -15.0, 15.0)  # needs 15^2 / 68 = 3.3 m/s2, TTC 2.4 s
    state, decision = step(state, t + CYCLE, 36.0 - 15.0 * CYCLE, -15.0, 15.0)
    assert decision.stage is Stage.PARTIAL
    assert CONFIG.partial_decel <= decision.decel_request_mps2 <= CONFIG.full_decel


def test_brake_is_held_while_still_closing_even_as_ttc_rises() -> None:
    """Hysteresis: slowing down raises the TTC, but the brake stays until speeds match."""
    state, t = warmed_up_at(10.0, -10.0, 10.0)
    state, decision = step(state, t + CYCLE, 9.8, -10.0, 10.0)
    assert decision.stage is Stage.FULL
    distance = 9.8
    for closing in (8.0, 5.0, 3.0, 1.0, 0.5):
        for _ in range(5):
            t += CYCLE
            distance -= closing * CYCLE
            state, decision = step(state, t, distance, -closing, 5.0 + closing)
            assert decision.stage is Stage.FULL, closing
    for _ in range(int(CONFIG.min_hold_s / CYCLE) + 1):
        t += CYCLE
        state, decision = step(state, t, distance, 0.0, 5.0)  # speed matched, object moving
    assert decision.stage is Stage.NONE


def test_no_chatter_on_a_noisy_threshold() -> None:
    """Noise around the warning threshold does not toggle the stage every cycle."""
    state = warmed_up()
    changes = 0
    t = 1.0
    for i in range(200):
        ttc = CONFIG.warn_ttc_s + (0.05 if i % 2 else -0.05)
        state, decision = step(state, t, 5.0 * ttc, -5.0, 20.0)
        changes += decision.stage_changed
        t += CYCLE
    assert changes == 1


def test_standstill_hold_behind_close_object() -> None:
    state, t = warmed_up_at(8.0, -8.0, 8.0)
    state, decision = step(state, t + CYCLE, 7.84, -8.0, 8.0)
    assert decision.stage is Stage.FULL
    for _ in range(100):
        t += CYCLE
        state, decision = step(state, t, 3.0, 0.0, 0.0)
    assert decision.stage is Stage.FULL
    assert decision.decel_request_mps2 == CONFIG.hold_decel


def test_stale_radar_is_a_fault_with_no_brake_request() -> None:
    state, t = warmed_up_at(10.0, -10.0, 10.0)
    state, decision = step(state, t + CYCLE, 9.8, -10.0, 10.0)
    assert decision.stage is Stage.FULL
    later = t + CYCLE + CONFIG.radar_timeout_s + 0.01
    state, decision = decide(state, later, None, EgoSample(later, 10.0), CONFIG)
    assert decision.fault == "radar stale"
    assert decision.fault_changed
    assert decision.stage is Stage.NONE
    assert decision.decel_request_mps2 == 0.0


def test_stale_ego_speed_is_a_fault() -> None:
    state = warmed_up()
    state, decision = decide(state, 1.0, RadarSample(1.0, 80.0, 0.0), EgoSample(0.5, 20.0), CONFIG)
    assert decision.fault == "ego speed stale"


def test_negative_distance_is_implausible() -> None:
    state = warmed_up()
    state, decision = step(state, 1.0, -3.0, -10.0, 10.0)
    assert "out of range" in decision.fault
    assert decision.decel_request_mps2 == 0.0


def test_non_finite_values_are_implausible() -> None:
    state = warmed_up()
    state, decision = step(state, 1.0, math.nan, -10.0, 10.0)
    assert decision.fault == "radar value not finite"


def test_single_sample_jump_is_a_fault_and_no_phantom_brake() -> None:
    """A one-sample spike to 2 m ahead must not brake."""
    state = warmed_up(distance=60.0)
    state, decision = step(state, 1.0, 2.0, -10.0, 20.0)
    assert decision.fault.startswith("radar distance jumped")
    assert decision.stage is Stage.NONE
    assert decision.decel_request_mps2 == 0.0


def test_confirmed_jump_is_a_new_object() -> None:
    """A cut-in: the distance jumps and the next samples confirm it."""
    state = warmed_up(distance=60.0)
    state, decision = step(state, 1.0, 25.0, 0.0, 20.0)
    assert decision.fault
    state, decision = step(state, 1.02, 25.0, 0.0, 20.0)
    assert state.last_radar is not None
    assert state.last_radar.distance_m == 25.0


def test_recovers_after_enough_good_samples() -> None:
    state = warmed_up()
    state, decision = step(state, 1.0, -1.0, 0.0, 20.0)
    assert decision.fault
    t = 1.0
    faults = []
    for _ in range(CONFIG.recovery_samples):
        t += CYCLE
        state, decision = step(state, t, 80.0, 0.0, 20.0)
        faults.append(bool(decision.fault))
    assert faults[:-1] == [True] * (CONFIG.recovery_samples - 1)
    assert faults[-1] is False


def test_invalid_object_means_no_target() -> None:
    state = warmed_up()
    state, decision = step(state, 1.0, 5.0, -10.0, 10.0, valid=False)
    assert decision.fault == ""
    assert decision.stage is Stage.NONE


@settings(max_examples=300, deadline=None)
@given(
    distance=st.floats(min_value=0.0, max_value=250.0),
    relative=st.floats(min_value=-60.0, max_value=60.0),
    ego=st.floats(min_value=0.0, max_value=60.0),
)
def test_no_brake_when_not_closing_in(distance: float, relative: float, ego: float) -> None:
    """Whatever the distance, an object that is not approaching never triggers a brake."""
    state = warmed_up(distance=distance, relative=0.0, ego=ego)
    rel = abs(relative)
    state, decision = step(state, 1.0, distance, rel, ego)
    if not decision.fault:
        assert decision.stage <= Stage.WARN or rel < CONFIG.min_closing_mps
        assert decision.decel_request_mps2 == 0.0


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(min_value=-10, max_value=100),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_any_input_gives_a_bounded_request(values: list[tuple[float, float, float, bool]]) -> None:
    """Garbage in: the request stays within [0, full_decel] and faults carry a reason."""
    state = PolicyState()
    t = 0.0
    for distance, relative, ego, valid in values:
        t += CYCLE
        state, decision = step(state, t, distance, relative, ego, valid)
        assert 0.0 <= decision.decel_request_mps2 <= CONFIG.full_decel
        if decision.fault:
            assert decision.stage is Stage.NONE
