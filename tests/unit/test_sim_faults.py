"""Injected bus faults: flood, garbage frames, bus-off."""

from __future__ import annotations

import can
import pytest

from edge_agent.simulator import dbc
from edge_agent.simulator.can_io import SimulatorSession
from edge_agent.simulator.faults import (
    ALL_GARBAGE,
    FLOOD_ID,
    FaultPlan,
    Garbage,
    parse_garbage_kinds,
)
from edge_agent.simulator.profiles import TimeWindows
from edge_agent.simulator.scenarios import get_scenario


def _frames(name: str, seconds: float, faults: FaultPlan | None = None) -> list[can.Message]:
    frames: list[can.Message] = []
    session = SimulatorSession(
        get_scenario(name), faults=faults, frame_sink=frames.append, epoch=0.0
    )
    session.advance(seconds)
    return frames


def test_flood_adds_the_requested_frames_per_second() -> None:
    frames = _frames("following-2s", 2.0, FaultPlan(flood_fps=1234.0))
    flood = [f for f in frames if f.arbitration_id == FLOOD_ID]
    assert len(flood) == 2468
    assert all(len(f.data) == 8 for f in flood)


def test_bus_flood_scenario_floods_at_3000_per_second() -> None:
    frames = _frames("bus-flood", 1.0)
    assert sum(f.arbitration_id == FLOOD_ID for f in frames) == 3000


def test_garbage_mixes_every_kind() -> None:
    known = {m.frame_id for m in dbc.load_vehicle_dbc().messages}
    frames = _frames("following-2s", 1.0, FaultPlan(garbage_fps=100.0))
    normal = {m.frame_id: 8 for m in dbc.load_vehicle_dbc().messages}
    errors = [f for f in frames if f.is_error_frame]
    remote = [f for f in frames if f.is_remote_frame]
    unknown = [
        f
        for f in frames
        if not f.is_error_frame and f.arbitration_id not in known and f.arbitration_id != FLOOD_ID
    ]
    short = [
        f
        for f in frames
        if not f.is_error_frame
        and not f.is_remote_frame
        and f.arbitration_id in normal
        and len(f.data) != 8
    ]
    assert len(errors) == len(remote) == len(unknown) == len(short) == 25
    assert dbc.load_vehicle_dbc().get_message_by_name(dbc.AEB_BRAKE_REQUEST).frame_id not in {
        f.arbitration_id for f in short + remote
    }


def test_bus_off_silences_the_vehicle_and_sends_error_frames() -> None:
    plan = FaultPlan(bus_off=TimeWindows.of((1.0, 1.5)), bus_off_error_fps=100.0)
    frames = _frames("following-2s", 2.0, plan)
    inside = [f for f in frames if 1.0 <= f.timestamp < 1.5]
    assert inside
    assert all(f.is_error_frame for f in inside)
    assert len(inside) == pytest.approx(50, abs=1)
    after = [f for f in frames if f.timestamp >= 1.5]
    assert any(not f.is_error_frame for f in after)


def test_silent_bus_off_sends_nothing() -> None:
    frames = _frames("following-2s", 2.0, FaultPlan(bus_off=TimeWindows.of((0.5, 1.0))))
    assert not [f for f in frames if 0.5 <= f.timestamp < 1.0]


def test_fault_plans_combine() -> None:
    scenario_plan = FaultPlan(flood_fps=10.0, bus_off=TimeWindows.of((1.0, 2.0)))
    combined = scenario_plan.combined(
        FaultPlan(garbage_fps=5.0, bus_off=TimeWindows.of((3.0, 4.0)))
    )
    assert combined.flood_fps == 10.0
    assert combined.garbage_fps == 5.0
    assert combined.bus_off.spans == ((1.0, 2.0), (3.0, 4.0))


def test_garbage_kinds_parse() -> None:
    assert parse_garbage_kinds("all") == ALL_GARBAGE
    assert parse_garbage_kinds("remote, error,remote") == (
        Garbage.REMOTE_FRAME,
        Garbage.ERROR_FRAME,
    )
    with pytest.raises(ValueError, match="unknown garbage kind nonsense"):
        parse_garbage_kinds("nonsense,error")
    with pytest.raises(ValueError):
        parse_garbage_kinds(" , ")
