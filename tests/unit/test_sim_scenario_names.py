"""Parameterised car-to-car names: every value in range parses, everything else says why."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.simulator.euro_ncap import (
    CCRB_DECEL,
    CCRB_GAP,
    CCRB_SPEED,
    CCRM_SPEED,
    CCRS_SPEED,
    MIN_OVERLAP_PCT,
    ScenarioRangeError,
    ccrb_collision_time,
    lateral_offset,
)
from edge_agent.simulator.scenario import Category
from edge_agent.simulator.scenarios import SCENARIOS, UnknownScenarioError, get_scenario
from edge_agent.simulator.vehicle import KMH, VEHICLE_WIDTH_M

overlaps = st.integers(MIN_OVERLAP_PCT, 100) | st.integers(-100, -MIN_OVERLAP_PCT)


def _overlap_part(overlap: int | None) -> str:
    return "" if overlap is None else f"-o{overlap}"


@settings(max_examples=200, deadline=None)
@given(
    speed=st.integers(CCRS_SPEED.low, CCRS_SPEED.high),
    overlap=st.none() | overlaps,
    moving=st.booleans(),
)
def test_every_speed_and_overlap_in_range_is_a_scenario(
    speed: int, overlap: int | None, moving: bool
) -> None:
    family = "ccrm" if moving else "ccrs"
    if moving and speed < CCRM_SPEED.low:
        speed = CCRM_SPEED.low
    name = f"{family}-{speed}{_overlap_part(overlap)}"
    scenario = get_scenario(name)
    canonical = name if overlap != 100 else f"{family}-{speed}"
    assert scenario.name == canonical
    assert get_scenario(scenario.name) == scenario  # the canonical name parses to the same
    assert scenario.category is Category.AEB
    assert scenario.expects_obstacle
    start = scenario.initial_state()
    assert start.ego.speed_mps == pytest.approx(speed * KMH)
    assert start.lead.speed_mps == pytest.approx(20.0 * KMH if moving else 0.0)
    share = 100 if overlap is None else overlap
    # The overlap is the share of the ego's width that the target covers; the sign is the side.
    assert start.lead.lateral_m == pytest.approx(lateral_offset(share))
    covered = VEHICLE_WIDTH_M - abs(start.lead.lateral_m)
    assert covered / VEHICLE_WIDTH_M == pytest.approx(abs(share) / 100)
    assert (start.lead.lateral_m < 0) == (0 < share < 100)
    assert start.in_same_lane
    assert 5.9 <= (start.time_to_collision_s or 0.0) <= 7.5


@settings(max_examples=200, deadline=None)
@given(
    gap=st.integers(CCRB_GAP.low, CCRB_GAP.high),
    decel=st.integers(CCRB_DECEL.low, CCRB_DECEL.high),
    speed=st.none() | st.integers(CCRB_SPEED.low, CCRB_SPEED.high),
)
def test_every_braking_target_cell_in_range_is_a_scenario(
    gap: int, decel: int, speed: int | None
) -> None:
    name = f"ccrb-{gap}-{decel}" + ("" if speed is None else f"-{speed}")
    scenario = get_scenario(name)
    kmh = 50 if speed is None else speed
    assert scenario.name == (f"ccrb-{gap}-{decel}" if kmh == 50 else f"ccrb-{gap}-{decel}-{kmh}")
    start = scenario.initial_state()
    assert start.gap_m == gap
    assert start.ego.speed_mps == pytest.approx(kmh * KMH)
    assert start.lead.speed_mps == pytest.approx(kmh * KMH)
    assert scenario.script.lead_speed_kmh.at(60.0) == 0.0
    assert scenario.duration_s >= 2.0 + ccrb_collision_time(kmh, gap, decel)


def _one_line_error(name: str) -> str:
    with pytest.raises(UnknownScenarioError) as caught:
        get_scenario(name)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(name) in message
    return message


@settings(max_examples=200, deadline=None)
@given(
    speed=st.integers(-1000, 10**6 - 1).filter(lambda v: not CCRS_SPEED.low <= v <= CCRS_SPEED.high)
)
def test_a_speed_out_of_range_is_a_one_line_error_naming_the_range(speed: int) -> None:
    message = _one_line_error(f"ccrs-{speed}")
    assert f"speed {speed} km/h is outside 10..80 km/h" in message


@settings(max_examples=200, deadline=None)
@given(
    overlap=st.integers(-(10**5), 10**5).filter(lambda o: abs(o) > 100 or abs(o) < MIN_OVERLAP_PCT)
)
def test_an_overlap_out_of_range_is_a_one_line_error(overlap: int) -> None:
    message = _one_line_error(f"ccrm-50-o{overlap}")
    assert isinstance(ScenarioRangeError(message), UnknownScenarioError)
    assert f"overlap {overlap} %" in message


@settings(max_examples=100, deadline=None)
@given(
    gap=st.integers(0, 100),
    decel=st.integers(0, 12),
    speed=st.integers(0, 200),
)
def test_braking_target_values_are_checked_one_by_one(gap: int, decel: int, speed: int) -> None:
    name = f"ccrb-{gap}-{decel}-{speed}"
    in_range = [span.low <= value <= span.high for span, value in
                ((CCRB_GAP, gap), (CCRB_DECEL, decel), (CCRB_SPEED, speed))]  # fmt: skip
    if all(in_range):
        assert get_scenario(name).expects_obstacle
        return
    message = _one_line_error(name)
    first_bad = ["gap", "deceleration", "speed"][in_range.index(False)]
    assert f": {first_bad} " in message
    assert "(ccrb-<gap_m>-<decel>[-<kmh>])" in message


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=30))
def test_any_text_is_a_scenario_or_one_line_error(name: str) -> None:
    message = ""
    try:
        scenario = get_scenario(name)
    except UnknownScenarioError as error:
        message = str(error)
    else:
        assert scenario.name in SCENARIOS or scenario.name.startswith(("ccrs", "ccrm", "ccrb"))
    assert "\n" not in message


@pytest.mark.parametrize(
    "name", ["ccrs-", "ccrs-50-o", "ccrs-50-x75", "ccrm-50-o75-o75", "ccrb-12", "ccrs-5.5"]
)
def test_malformed_names_say_what_was_expected(name: str) -> None:
    assert "does not parse: expected" in _one_line_error(name)


def test_the_fixed_names_keep_their_meaning() -> None:
    for name in [*(f"ccrs-{v}" for v in range(10, 90, 10)), "ccrm-30", "ccrm-80", "ccrb-12-6"]:
        assert get_scenario(name) is SCENARIOS[name]
    ccrs_50 = SCENARIOS["ccrs-50"]
    assert ccrs_50.duration_s == 8.0
    assert ccrs_50.script.lead_initial_gap_m == pytest.approx(50 * KMH * 6.0)
    assert ccrs_50.script.lead_lateral_m.at(0.0) == 0.0
    assert get_scenario("ccrs-50-o100") == ccrs_50
    assert get_scenario("ccrs-050") == ccrs_50
    ccrb = SCENARIOS["ccrb-40-2"]
    assert ccrb == get_scenario("ccrb-40-2-50")
    assert ccrb.script.ego_speed_kmh.at(0.0) == 50.0
    assert "overlap" not in ccrs_50.description


def test_the_sides_of_an_offset_target() -> None:
    right, left = get_scenario("ccrs-35-o50"), get_scenario("ccrs-35-o-50")
    assert right.script.lead_lateral_m.at(0.0) == pytest.approx(-0.9)
    assert left.script.lead_lateral_m.at(0.0) == pytest.approx(0.9)
    assert "offset to the right" in right.description
    assert "offset to the left" in left.description
