"""The scenario catalogue: names, metadata, and every scenario running open loop."""

from __future__ import annotations

import pytest

from edge_agent.simulator.can_io import SimulatorSession
from edge_agent.simulator.scenario import Category
from edge_agent.simulator.scenarios import SCENARIOS, UnknownScenarioError, get_scenario

REQUIRED = [
    *(f"ccrs-{v}" for v in range(10, 90, 10)),
    *(f"ccrm-{v}" for v in range(30, 90, 10)),
    "ccrb-12-2",
    "ccrb-12-6",
    "ccrb-40-2",
    "ccrb-40-6",
    "following-2s",
    "cut-in-safe",
    "passing-next-lane",
    "stop-and-go",
    "radar-dropout",
    "bus-flood",
    "standard-drive",
    "demo-route",
]


def test_the_catalogue_has_every_required_name() -> None:
    assert set(REQUIRED) <= set(SCENARIOS)


def test_unknown_names_list_the_known_ones() -> None:
    # ccrs-55 was unknown before names took parameters; ccrx is no family at all.
    with pytest.raises(UnknownScenarioError) as caught:
        get_scenario("ccrx-55")
    assert "'ccrx-55'" in str(caught.value)
    assert "ccrs-50, ccrs-60" in str(caught.value)
    assert "ccrs-<kmh>[-o<overlap>]" in str(caught.value)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_scenario_runs_to_completion_without_brake_input(name: str) -> None:
    scenario = get_scenario(name)
    session = SimulatorSession(scenario, epoch=0.0)
    result = session.run()
    assert session.finished
    assert result.brake_activations == 0
    assert not result.false_activation
    if scenario.expects_obstacle:
        # The driver never brakes for obstacles: without the AEB every such scenario collides.
        assert result.collision
        assert result.impact_speed_kmh is not None
        assert result.impact_speed_kmh > 5.0
        assert result.min_ttc_s == 0.0
    else:
        assert not result.collision
        assert result.duration_s == pytest.approx(scenario.duration_s, abs=1e-6)
        if scenario.category is Category.BENIGN:
            assert result.min_ttc_s is None or result.min_ttc_s > 3.0


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n.startswith(("ccrs", "ccrm"))])
def test_approaches_start_at_a_useful_time_to_collision(name: str) -> None:
    state = get_scenario(name).initial_state()
    assert state.time_to_collision_s is not None
    assert 5.9 <= state.time_to_collision_s <= 7.5
    assert state.gap_m <= 150.0


def test_summaries_are_json_ready() -> None:
    summary = get_scenario("ccrb-40-6").summary()
    assert summary["name"] == "ccrb-40-6"
    assert summary["category"] == "aeb"
    assert summary["expects_obstacle"] is True
