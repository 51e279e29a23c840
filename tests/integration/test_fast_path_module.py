"""The fast-path module end to end on python-can virtual buses, in the agent's loop.

The timing-isolated configuration (own process, own socket) is exercised by
test_fast_path_isolation.py; here the module runs ``isolation = "in-loop"`` so the test
process can drive the virtual CAN channel it listens on.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import can
import cantools
import pytest

from edge_agent.can.resources import resolve_data_path
from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.supervisor import Supervisor
from fixtures import can_faults
from fixtures.waiting import wait_until

DBC = cantools.database.load_file(
    str(resolve_data_path("package:edge_agent.simulator/data/vehicle.dbc"))
)
RADAR = DBC.get_message_by_name("RadarObject")
EGO = DBC.get_message_by_name("EgoMotion")
BRAKE = DBC.get_message_by_name("AebBrakeRequest")


def radar_frame(distance: float, relative: float, valid: bool = True) -> can.Message:
    data = RADAR.encode(
        {
            "ObjectDistance": distance,
            "ObjectRelativeSpeed": relative,
            "ObjectLateralPosition": 0,
            "ObjectValid": int(valid),
            "ObjectInPath": 1,
            "ObjectWidth": 1.8,
            "ObjectId": 0,
            "RadarCounter": 0,
            "RadarChecksum": 0,
        }
    )
    return can.Message(arbitration_id=RADAR.frame_id, data=data, is_extended_id=False)


def ego_frame(speed_mps: float) -> can.Message:
    data = EGO.encode(
        {"EgoSpeed": speed_mps * 3.6, "LongitudinalAccel": 0, "YawRate": 0, "EgoMotionCounter": 0}
    )
    return can.Message(arbitration_id=EGO.frame_id, data=data, is_extended_id=False)


class Vehicle:
    """The test's side of the CAN channel: sends radar and ego frames, collects brake frames."""

    def __init__(self, channel: str, interface: str = "virtual") -> None:
        self.bus = can.Bus(interface="virtual", channel=channel, receive_own_messages=False)
        self.brakes: list[dict[str, Any]] = []
        self.distance = 60.0
        self.relative = 0.0
        self.speed = 15.0
        self.radar_on = True
        self.valid = True
        self.spike: float | None = None

    async def drive(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.bus.send(ego_frame(self.speed))
            if self.spike is not None:
                self.bus.send(radar_frame(self.spike, self.relative, self.valid))
                self.spike = None
            elif self.radar_on:
                self.bus.send(radar_frame(self.distance, self.relative, self.valid))
            self.distance = max(0.5, self.distance + self.relative * 0.02)
            while (frame := self.bus.recv(timeout=0)) is not None:
                if frame.arbitration_id == BRAKE.frame_id:
                    self.brakes.append(BRAKE.decode(frame.data, decode_choices=False))
            await asyncio.sleep(0.02)  # the scenario: the vehicle sends at 50 Hz


@pytest.fixture
def channel() -> str:
    return f"fastpath-{uuid.uuid4().hex[:8]}"


def agent_config(tmp_path: Path, channel: str, interface: str = "virtual") -> Any:
    return validate_config(
        {
            "agent": {"vehicle_id": "fp-1", "state_dir": str(tmp_path)},
            "modules": {
                "fast-path": {
                    "isolation": "in-loop",
                    "config": {
                        "can": {"interface": interface, "channel": channel},
                        # Health here says what the radar did, not how loaded the machine
                        # running the test is (latency is edge-agent bench fastpath's figure).
                        "latency_budget_ms": 60_000.0,
                    },
                }
            },
        }
    )


async def run_agent(
    tmp_path: Path, channel: str, interface: str = "virtual"
) -> tuple[Supervisor, asyncio.Task[int]]:
    supervisor = Supervisor(agent_config(tmp_path, channel, interface))
    task = asyncio.create_task(supervisor.run())
    await wait_until(
        lambda: supervisor.runners["fast-path"].state is ModuleState.RUNNING,
        what="the fast path running",
    )
    return supervisor, task


async def test_brakes_for_a_stationary_object_and_reports_events(
    tmp_path: Path, channel: str
) -> None:
    vehicle = Vehicle(channel)
    supervisor, agent = await run_agent(tmp_path, channel)
    events = supervisor.bus.subscribe("events/fast_path", maxsize=100)
    stop = asyncio.Event()
    driving = asyncio.create_task(vehicle.drive(stop))
    try:
        await wait_until(lambda: len(vehicle.brakes) > 20, what="more than 20 brake frames")
        assert all(b["AebStage"] == 0 for b in vehicle.brakes[-5:]), "no threat, no brake"
        vehicle.relative = -15.0  # closing at 15 m/s from 60 m
        await wait_until(
            lambda: any(b["AebStage"] == 3 for b in vehicle.brakes), what="a full-brake frame"
        )
        full = [b for b in vehicle.brakes if b["AebStage"] == 3]
        assert full[0]["AebDecelRequest"] == pytest.approx(9.0, abs=0.01)
        stages = []
        async with asyncio.timeout(5):
            while "full" not in stages:
                event = await events.get()
                assert event.priority.name == "CONTROL"
                stages.append(event.payload.get("stage"))
        # 15 m/s closing needs 3 m/s2 at 39.5 m (TTC 2.63 s): partial comes before any warning
        assert stages.index("partial") < stages.index("full")
        runner = supervisor.runners["fast-path"]
        await wait_until(
            lambda: (
                runner.context is not None
                and runner.context.health.report.details.get("latency_ms", {}).get("count", 0) > 10
            ),
            what="more than 10 latency samples",
        )
        latency = runner.context.health.report.details["latency_ms"]
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
        histogram = runner.context.health.report.details["latency_histogram"]
        assert len(histogram["counts"]) == len(histogram["bounds_s"]) + 1
        assert sum(histogram["counts"]) >= latency["count"]  # since start vs. recent window
        assert histogram["sum_s"] > 0
    finally:
        stop.set()
        await driving
        supervisor.request_stop()
        assert await agent == 0
        vehicle.bus.shutdown()


async def test_stale_radar_faults_and_recovers_without_phantom_braking(
    tmp_path: Path, channel: str
) -> None:
    vehicle = Vehicle(channel)
    supervisor, agent = await run_agent(tmp_path, channel)
    runner = supervisor.runners["fast-path"]
    stop = asyncio.Event()
    driving = asyncio.create_task(vehicle.drive(stop))
    try:
        await wait_until(
            lambda: runner.context.health.report.details.get("fault") == "",
            what="the fast path without a fault",
        )
        vehicle.radar_on = False
        await wait_until(
            lambda: runner.context.health.report.details.get("fault") == "radar stale",
            what="the radar-stale fault",
        )
        assert not runner.context.health.report.ok
        count = len(vehicle.brakes)
        await wait_until(lambda: len(vehicle.brakes) > count + 5, what="braking to resume")
        assert all(b["AebStage"] == 0 and b["AebDecelRequest"] == 0 for b in vehicle.brakes[count:])
        vehicle.radar_on = True
        await wait_until(
            lambda: runner.context.health.report.details.get("fault") == "",
            what="the fault to clear",
        )
        assert runner.context.health.report.ok
    finally:
        stop.set()
        await driving
        supervisor.request_stop()
        assert await agent == 0
        vehicle.bus.shutdown()


async def test_one_sample_spike_is_a_fault_not_a_brake(tmp_path: Path, channel: str) -> None:
    """A single radar frame reporting an object 1 m ahead must not brake (phantom braking)."""
    vehicle = Vehicle(channel)
    supervisor, agent = await run_agent(tmp_path, channel)
    events = supervisor.bus.subscribe("events/fast_path", maxsize=100)
    runner = supervisor.runners["fast-path"]
    stop = asyncio.Event()
    driving = asyncio.create_task(vehicle.drive(stop))
    try:
        await wait_until(
            lambda: runner.context.health.report.details.get("fault") == "",
            what="the fast path without a fault",
        )
        before = len(vehicle.brakes)
        vehicle.spike = 1.0
        async with asyncio.timeout(5):
            while True:
                event = (await events.get()).payload
                if "jumped" in event.get("fault", ""):
                    break
        assert event["kind"] == "fault"
        assert event["stage"] == "none"
        async with asyncio.timeout(5):
            while True:  # the fault clears after enough good samples
                event = (await events.get()).payload
                if event["kind"] == "fault" and event["fault"] == "":
                    break
        assert all(b["AebStage"] == 0 for b in vehicle.brakes[before:])
    finally:
        stop.set()
        await driving
        supervisor.request_stop()
        assert await agent == 0
        vehicle.bus.shutdown()


async def test_failed_brake_frame_send_is_a_fault_event(tmp_path: Path, channel: str) -> None:
    can_faults.register()
    vehicle = Vehicle(channel)
    supervisor, agent = await run_agent(tmp_path, channel, interface="failing-virtual")
    events = supervisor.bus.subscribe("events/fast_path", maxsize=100)
    runner = supervisor.runners["fast-path"]
    stop = asyncio.Event()
    driving = asyncio.create_task(vehicle.drive(stop))
    try:
        await wait_until(lambda: len(vehicle.brakes) > 5, what="more than 5 brake frames")
        can_faults.FAIL_SENDS.set()
        async with asyncio.timeout(5):
            while True:
                event = await events.get()
                if event.payload.get("source") == "can-send":
                    break
        assert event.payload["fault"].startswith("brake frame send failed")
        await wait_until(
            lambda: runner.context.health.report.details.get("send_failures", 0) > 0,
            what="a counted send failure",
        )
        can_faults.FAIL_SENDS.clear()
        async with asyncio.timeout(5):
            while True:
                event = await events.get()
                if event.payload.get("source") == "can-send":
                    break
        assert event.payload["fault"] == "cleared"
    finally:
        can_faults.FAIL_SENDS.clear()
        stop.set()
        await driving
        supervisor.request_stop()
        assert await agent == 0
        vehicle.bus.shutdown()
