"""The simulator in closed loop with a brake controller over python-can buses."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator

import can
import pytest

from edge_agent.simulator import dbc
from edge_agent.simulator.can_io import BrakeRequestEvent, SimulatorSession
from edge_agent.simulator.runner import run_paced
from edge_agent.simulator.scenarios import get_scenario
from fixtures.tiny_aeb import TinyAeb

_channels = itertools.count()


@pytest.fixture
def buses() -> Iterator[tuple[can.BusABC, can.BusABC]]:
    channel = f"sim-closed-loop-{next(_channels)}"
    with (
        can.Bus(interface="virtual", channel=channel) as vehicle,
        can.Bus(interface="virtual", channel=channel) as agent,
    ):
        yield vehicle, agent


def _brake_frame(decel: float, stage: int, counter: int) -> can.Message:
    message = dbc.load_vehicle_dbc().get_message_by_name(dbc.AEB_BRAKE_REQUEST)
    data = message.encode({"AebDecelRequest": decel, "AebStage": stage, "AebCounter": counter})
    return can.Message(arbitration_id=message.frame_id, data=data, is_extended_id=False)


@pytest.mark.parametrize("name", ["ccrs-50", "ccrs-80", "ccrm-60", "ccrb-12-6", "bus-flood"])
def test_a_brake_controller_avoids_the_collision(
    buses: tuple[can.BusABC, can.BusABC], name: str
) -> None:
    vehicle, agent = buses
    session = SimulatorSession(get_scenario(name), vehicle, epoch=0.0)
    aeb = TinyAeb(agent)
    while not session.finished:
        session.step()
        aeb.poll()
    result = session.result()
    assert not result.collision
    assert result.brake_activations >= 1
    assert result.min_gap_m is not None
    assert result.min_gap_m > 0.5
    assert result.brake_frames == aeb.frames_sent
    assert result.max_deceleration_mps2 <= 9.0


def test_without_the_controller_the_same_run_collides(
    buses: tuple[can.BusABC, can.BusABC],
) -> None:
    vehicle, _agent = buses
    result = SimulatorSession(get_scenario("ccrs-50"), vehicle, epoch=0.0).run()
    assert result.collision
    assert result.impact_speed_kmh == pytest.approx(50.0)


def test_stationary_target_ends_stopped_short(buses: tuple[can.BusABC, can.BusABC]) -> None:
    vehicle, agent = buses
    session = SimulatorSession(get_scenario("ccrs-30"), vehicle, epoch=0.0)
    aeb = TinyAeb(agent)
    while not session.finished:
        session.step()
        aeb.poll()
        if session.state.ego.speed_mps == 0.0:
            break
    assert session.state.ego.speed_mps == 0.0
    assert session.state.gap_m > 0.5


def test_benign_scenario_has_no_false_activation_with_a_controller(
    buses: tuple[can.BusABC, can.BusABC],
) -> None:
    vehicle, agent = buses
    session = SimulatorSession(get_scenario("cut-in-safe"), vehicle, epoch=0.0)
    aeb = TinyAeb(agent)
    while not session.finished:
        session.step()
        aeb.poll()
    result = session.result()
    assert result.brake_activations == 0
    assert not result.false_activation


def test_demo_route_brakes_once_and_drives_on(buses: tuple[can.BusABC, can.BusABC]) -> None:
    vehicle, agent = buses
    session = SimulatorSession(get_scenario("demo-route"), vehicle, epoch=0.0)
    aeb = TinyAeb(agent)
    while not session.finished:
        session.step()
        aeb.poll()
    result = session.result()
    assert not result.collision
    assert result.brake_activations >= 1
    assert result.final_speed_kmh == pytest.approx(80.0, abs=0.5)
    assert result.duration_s == pytest.approx(90.0)


def test_a_request_that_is_not_refreshed_times_out(
    buses: tuple[can.BusABC, can.BusABC],
) -> None:
    vehicle, agent = buses
    session = SimulatorSession(get_scenario("ccrs-80"), vehicle, epoch=0.0)
    agent.send(_brake_frame(6.0, 2, 0))
    session.step()
    assert session.current_brake_request() == 6.0
    session.advance(0.195)
    assert session.current_brake_request() == 6.0
    session.advance(0.02)
    assert session.current_brake_request() == 0.0
    assert session.result().brake_activations == 1


def test_the_first_partial_and_full_brake_are_stamped_in_simulated_time(
    buses: tuple[can.BusABC, can.BusABC],
) -> None:
    """The grid report's first partial and first full brake: when each stage was first asked."""
    vehicle, agent = buses
    session = SimulatorSession(get_scenario("ccrs-80"), vehicle, epoch=0.0)
    agent.send(_brake_frame(0.0, 1, 0))  # a warning is no brake
    session.advance(0.5)
    warned = session.result()
    assert (warned.first_partial_brake_s, warned.first_full_brake_s) == (None, None)
    partial_at = session.time_s
    agent.send(_brake_frame(4.0, 2, 1))
    session.step()
    session.advance(0.3)
    full_at = session.time_s
    agent.send(_brake_frame(9.0, 3, 2))
    session.step()
    session.advance(0.1)
    agent.send(_brake_frame(4.0, 2, 3))  # back to partial, then partial again: stamps stay
    session.step()
    result = session.result()
    assert result.first_partial_brake_s == pytest.approx(partial_at)
    assert result.first_full_brake_s == pytest.approx(full_at)
    assert full_at - partial_at == pytest.approx(session.tick_s + 0.3)


def test_a_full_brake_straight_away_is_also_the_first_partial(
    buses: tuple[can.BusABC, can.BusABC],
) -> None:
    vehicle, agent = buses
    session = SimulatorSession(get_scenario("ccrs-80"), vehicle, epoch=0.0)
    session.advance(1.0)
    at = session.time_s
    agent.send(_brake_frame(9.0, 3, 0))
    session.step()
    result = session.result()
    assert result.first_partial_brake_s == pytest.approx(at)
    assert result.first_full_brake_s == pytest.approx(at)


def test_bad_brake_frames_are_counted_and_ignored(buses: tuple[can.BusABC, can.BusABC]) -> None:
    vehicle, agent = buses
    session = SimulatorSession(get_scenario("ccrs-80"), vehicle, epoch=0.0)
    brake_id = dbc.load_vehicle_dbc().get_message_by_name(dbc.AEB_BRAKE_REQUEST).frame_id
    agent.send(can.Message(arbitration_id=brake_id, data=b"\x01\x02", is_extended_id=False))
    agent.send(can.Message(arbitration_id=brake_id, is_remote_frame=True, is_extended_id=False))
    agent.send(_brake_frame(3.0, 2, 5))
    agent.send(_brake_frame(3.0, 2, 9))
    session.step()
    assert session.bad_brake_frames == 1
    assert session.brake_frames == 2
    assert session.counter_errors == 1
    assert session.current_brake_request() == 3.0


def test_latency_hook_sees_each_request_with_the_last_radar_frame(
    buses: tuple[can.BusABC, can.BusABC],
) -> None:
    vehicle, agent = buses
    session = SimulatorSession(get_scenario("ccrs-50"), vehicle, epoch=0.0)
    events: list[BrakeRequestEvent] = []
    session.brake_request_observers.append(events.append)
    aeb = TinyAeb(agent)
    while not session.finished:
        session.step()
        aeb.poll()
    assert len(events) == aeb.frames_sent > 0
    for event in events:
        assert event.last_radar_sent_monotonic is not None
        assert event.last_radar_sim_time_s is not None
        assert event.received_monotonic >= event.last_radar_sent_monotonic
        assert 0.0 <= event.sim_time_s - event.last_radar_sim_time_s <= 0.02 + 1e-9
        assert event.stage in (2, 3)


def test_paced_run_follows_the_wall_clock(buses: tuple[can.BusABC, can.BusABC]) -> None:
    vehicle, _agent = buses
    session = SimulatorSession(get_scenario("ccrs-80"), vehicle, duration_s=1.0)
    start = time.monotonic()
    result = run_paced(session, speed=10.0)
    elapsed = time.monotonic() - start
    assert result.duration_s == pytest.approx(1.0)
    assert elapsed >= 0.095, "1 s of scenario at 10x must take 0.1 s of wall time, not less"


def test_paced_run_takes_requests_while_it_waits(buses: tuple[can.BusABC, can.BusABC]) -> None:
    vehicle, agent = buses
    session = SimulatorSession(get_scenario("ccrs-80"), vehicle, duration_s=0.1)
    agent.send(_brake_frame(9.0, 3, 0))
    result = run_paced(session, speed=math.inf)
    assert result.brake_activations == 1
    with pytest.raises(ValueError):
        run_paced(session, speed=0.0)
