"""The can-reader module inside a real Supervisor, on python-can virtual buses."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import can
import pytest

from edge_agent.bus import Priority, RequestFailed
from edge_agent.can.types import BusStatus, DecodedMessage, FrameToSend
from edge_agent.clock import SystemClock
from edge_agent.config import ConfigError, validate_config
from edge_agent.module_api import ModuleState
from edge_agent.modules.can_reader import CanReaderModule
from edge_agent.modules.can_reader.connection import BusConnection
from edge_agent.sdnotify import SystemdNotifier
from edge_agent.supervisor import Supervisor
from fixtures.can_helpers import BENCH_DBC, BROKEN_DBC, DBC_DIR, frame, no_leaked_channels
from fixtures.waiting import wait_until

__all__ = ["no_leaked_channels"]
pytestmark = pytest.mark.usefixtures("no_leaked_channels")
NAME = "can-reader"
RADAR_ARXML = DBC_DIR / "radar.arxml"


@pytest.fixture
def channels() -> Iterator[dict[str, str]]:
    return {"chassis": f"chassis-{uuid.uuid4().hex}", "radar": f"radar-{uuid.uuid4().hex}"}


@pytest.fixture
def vss(tmp_path: Path) -> Path:
    path = tmp_path / "vss.json"
    path.write_text(json.dumps({"Speed.VehicleSpeed": "Vehicle.Speed", "Gear": "Vehicle.Gear"}))
    return path


def bus_entry(name: str, channel: str, dbc: Path, **options: Any) -> dict[str, Any]:
    return {"name": name, "interface": "virtual", "channel": channel, "dbc": str(dbc), **options}


def config_for(tmp_path: Path, buses: list[dict[str, Any]], **reader: Any) -> Any:
    return validate_config(
        {
            "agent": {
                "vehicle_id": "test-car",
                "state_dir": str(tmp_path / "state"),
                "health_interval_s": 0.05,
            },
            "modules": {
                NAME: {
                    "backoff_initial_s": 0.01,
                    "backoff_max_s": 0.05,
                    "config": {
                        "buses": buses,
                        "stats_interval_s": 0.05,
                        "reconnect_initial_s": 0.01,
                        "reconnect_max_s": 0.05,
                        **reader,
                    },
                }
            },
        }
    )


@asynccontextmanager
async def agent(config: Any) -> AsyncIterator[Supervisor]:
    supervisor = Supervisor(config, notifier=SystemdNotifier(environ={}))
    task = asyncio.create_task(supervisor.run())
    try:
        yield supervisor
    finally:
        supervisor.request_stop()
        await asyncio.wait_for(task, 15)


def reader(supervisor: Supervisor) -> CanReaderModule:
    module = supervisor.runners[NAME].module
    assert isinstance(module, CanReaderModule)
    return module


async def running(supervisor: Supervisor) -> CanReaderModule:
    runner = supervisor.runners[NAME]
    await wait_until(
        lambda: runner.state is ModuleState.RUNNING, timeout=10, what="can-reader running"
    )
    return reader(supervisor)


def details(supervisor: Supervisor) -> dict[str, Any]:
    return supervisor.snapshot()["modules"][NAME]


@pytest.fixture
def senders(channels: dict[str, str]) -> Iterator[dict[str, can.BusABC]]:
    buses = {name: can.Bus(interface="virtual", channel=ch) for name, ch in channels.items()}
    yield buses
    for bus in buses.values():
        bus.shutdown()


async def test_two_buses_decode_publish_and_count(
    tmp_path: Path, channels: dict[str, str], senders: dict[str, can.BusABC], vss: Path
) -> None:
    config = config_for(
        tmp_path,
        [
            bus_entry("chassis", channels["chassis"], BENCH_DBC, publish_raw=True),
            bus_entry("radar", channels["radar"], BROKEN_DBC, vss_mapping=str(vss)),
        ],
    )
    async with agent(config) as supervisor:
        decoded = supervisor.bus.subscribe("can/+/decoded/#", maxsize=1000)
        raw = supervisor.bus.subscribe("can/+/raw", maxsize=1000)
        await running(supervisor)
        senders["chassis"].send(frame(257, bytes(8)))
        senders["radar"].send(frame(256, bytes([0x10, 0x27, 3, 0, 0, 0, 0, 0])))
        first, second = await decoded.get(), await decoded.get()
        by_topic = {first.topic: first, second.topic: second}
        assert set(by_topic) == {"can/chassis/decoded/VehicleDynamics", "can/radar/decoded/Speed"}
        radar = by_topic["can/radar/decoded/Speed"]
        payload = radar.payload
        assert isinstance(payload, DecodedMessage)
        assert payload.signals == {"Vehicle.Speed": 100.0, "Vehicle.Gear": 3, "Temperature": -10.0}
        assert radar.sender == NAME
        assert (await raw.get()).topic == "can/chassis/raw"

        # Garbage on one bus is counted and changes nothing for the other.
        for index in range(50):
            senders["radar"].send(frame(0x700 + index, os.urandom(index % 9)))
            senders["radar"].send(frame(256, os.urandom(index % 8)))  # always too short
        senders["chassis"].send(frame(256, bytes(8)))
        assert (await decoded.get()).topic == "can/chassis/decoded/WheelSpeeds"

        def radar_counters() -> dict[str, Any]:
            return details(supervisor)["details"]["buses"]["radar"]

        await wait_until(lambda: radar_counters()["frames"] == 101, what="radar counters")
        counters = radar_counters()
        assert (counters["unknown_ids"], counters["decode_failures"]) == (50, 50)
        assert counters["state"] == "up"
        assert counters["drops"] == 0
        assert counters["reader"] == "thread"
        health = details(supervisor)
        assert health["ok"]
        assert health["state"] == "running"
        assert health["details"]["frames"] == 103
        await wait_until(
            lambda: details(supervisor)["details"]["frames_per_s"] > 0,
            what="a frame rate in the reader's health",
        )


async def test_a_closed_bus_reconnects_and_reports_its_states(
    tmp_path: Path, channels: dict[str, str], senders: dict[str, can.BusABC]
) -> None:
    config = config_for(tmp_path, [bus_entry("chassis", channels["chassis"], BENCH_DBC)])
    async with agent(config) as supervisor:
        status = supervisor.bus.subscribe("can/chassis/status", maxsize=100)
        decoded = supervisor.bus.subscribe("can/chassis/decoded/#", maxsize=100)
        module = await running(supervisor)
        connection = module.connections["chassis"]
        assert (await status.get()).payload == BusStatus("chassis", "up", "opened (thread reader)")
        assert connection.can_bus is not None
        connection.can_bus.shutdown()  # the driver goes away under the reader
        down = await status.get()
        assert down.priority is Priority.CONTROL
        assert down.payload.state == "down"
        assert "closed bus" in down.payload.reason
        assert (await status.get()).payload.state == "up"
        assert connection.reconnects == 1
        senders["chassis"].send(frame(257, bytes(8)))
        assert (await decoded.get()).topic == "can/chassis/decoded/VehicleDynamics"
        assert supervisor.runners[NAME].restarts == 0  # recovered inside the module


async def test_bus_off_degrades_health_then_the_bus_is_reopened(
    tmp_path: Path, channels: dict[str, str], senders: dict[str, can.BusABC]
) -> None:
    config = config_for(
        tmp_path, [bus_entry("chassis", channels["chassis"], BENCH_DBC, bus_off_reopen_s=0.2)]
    )
    async with agent(config) as supervisor:
        status = supervisor.bus.subscribe("can/chassis/status", maxsize=100)
        module = await running(supervisor)
        assert (await status.get()).payload.state == "up"
        senders["chassis"].send(
            can.Message(is_error_frame=True, arbitration_id=0x40, data=bytes(8))
        )
        bus_off = await status.get()
        assert bus_off.payload.state == "bus-off"
        await wait_until(
            lambda: not details(supervisor)["ok"], what="the reader reporting a problem"
        )
        assert "chassis: bus-off" in details(supervisor)["reason"]
        states = [(await status.get()).payload.state for _ in range(2)]
        assert states == ["down", "up"]  # no recovery within 0.2 s: closed and reopened
        assert module.connections["chassis"].reconnects == 1
        await wait_until(lambda: details(supervisor)["ok"], what="the reader healthy again")
        assert details(supervisor)["details"]["buses"]["chassis"]["error_frames"] == 1


async def test_send_request_reaches_the_bus(
    tmp_path: Path, channels: dict[str, str], senders: dict[str, can.BusABC]
) -> None:
    config = config_for(tmp_path, [bus_entry("chassis", channels["chassis"], BENCH_DBC)])
    async with agent(config) as supervisor:
        await running(supervisor)
        reply = await supervisor.bus.request(
            "can/chassis/send", FrameToSend(0xA0, b"\x01\x02\x03"), timeout=5
        )
        assert reply.payload == {"bus": "chassis", "arbitration_id": 0xA0, "sent": True}
        received = await asyncio.to_thread(senders["chassis"].recv, 2.0)
        assert received is not None
        assert bytes(received.data) == b"\x01\x02\x03"
        mapping = await supervisor.bus.request(
            "can/chassis/send", {"arbitration_id": 0xA1, "data": "ff00"}, timeout=5
        )
        assert mapping.payload["sent"]
        with pytest.raises(RequestFailed, match="out of range"):
            await supervisor.bus.request("can/chassis/send", FrameToSend(0x800, b""), timeout=5)
        with pytest.raises(RequestFailed, match="TypeError"):
            await supervisor.bus.request("can/chassis/send", "not a frame", timeout=5)


async def test_one_unopenable_bus_degrades_but_the_other_runs(
    tmp_path: Path, channels: dict[str, str], senders: dict[str, can.BusABC]
) -> None:
    broken = {
        "name": "body",
        "interface": "socketcan",
        "channel": "nosuchcan0",
        "dbc": str(BENCH_DBC),
    }
    config = config_for(tmp_path, [bus_entry("chassis", channels["chassis"], BENCH_DBC), broken])
    async with agent(config) as supervisor:
        decoded = supervisor.bus.subscribe("can/chassis/decoded/#", maxsize=10)
        module = await running(supervisor)
        await wait_until(
            lambda: "body: down" in details(supervisor)["reason"], what="the body bus reported down"
        )
        assert "cannot open" in module.connections["body"].reason
        senders["chassis"].send(frame(257, bytes(8)))
        assert (await decoded.get()).payload.bus == "chassis"
        with pytest.raises(RequestFailed, match="bus body is down"):
            await supervisor.bus.request("can/body/send", FrameToSend(0x1, b""), timeout=5)


async def test_no_bus_at_all_means_not_ready_and_backoff(tmp_path: Path) -> None:
    broken = {
        "name": "body",
        "interface": "socketcan",
        "channel": "nosuchcan0",
        "dbc": str(BENCH_DBC),
    }
    async with agent(config_for(tmp_path, [broken])) as supervisor:
        runner = supervisor.runners[NAME]
        await wait_until(lambda: runner.restarts >= 1, timeout=10, what="a retry")
        assert "no CAN bus could be opened" in runner.last_error
        assert runner.failures == 0  # not ready is retried, not counted as a failure


def test_config_errors_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config_for(
            tmp_path,
            [
                {"name": "a", "channel": "x", "dbc": str(tmp_path / "missing.dbc")},
                {"name": "a", "channel": "y", "dbc": str(BENCH_DBC), "bogus": 1},
            ],
        )
    text = "\n".join(caught.value.lines())
    assert "modules.can-reader.config.buses.0.dbc: Value error, no such file" in text
    assert "modules.can-reader.config.buses.1.bogus: unknown setting" in text
    with pytest.raises(ConfigError, match="bus names must be unique"):
        config_for(tmp_path, [bus_entry("a", "x", BENCH_DBC), bus_entry("a", "y", BENCH_DBC)])


def test_bus_arguments_carry_kernel_filters_for_socketcan(tmp_path: Path) -> None:
    from edge_agent.modules.can_reader.module import prepare_bus

    config = config_for(
        tmp_path,
        [
            {
                "name": "c",
                "channel": "can0",
                "dbc": str(BENCH_DBC),
                "messages": ["RadarObject"],
                "bitrate": 500000,
                "fd": True,
                "options": {"ignore_rx_error_frames": False},
            }
        ],
    )
    settings = config.modules[NAME].config
    bus_config = settings.buses[0]
    context: Any = SimpleNamespace(clock=SystemClock())  # all bus_arguments() needs
    connection = BusConnection(bus_config, prepare_bus(bus_config).decoder, settings, context)
    arguments = connection.bus_arguments()
    assert arguments["can_filters"] == [{"can_id": 512, "can_mask": 0x7FF, "extended": False}]
    assert (arguments["bitrate"], arguments["fd"], arguments["receive_own_messages"]) == (
        500000,
        True,
        False,
    )
    assert arguments["ignore_rx_error_frames"] is False


def test_reconnect_backoff_is_capped_and_jittered(tmp_path: Path) -> None:
    import random

    from edge_agent.modules.can_reader.module import prepare_bus

    bus = bus_entry("c", "x", BENCH_DBC)
    config = config_for(tmp_path, [bus], reconnect_initial_s=0.5, reconnect_max_s=4.0)
    settings = config.modules[NAME].config
    context: Any = SimpleNamespace(clock=SystemClock())
    bus_config = settings.buses[0]
    connection = BusConnection(
        bus_config, prepare_bus(bus_config).decoder, settings, context, rng=random.Random(7)
    )
    delays = [connection.backoff.delay(attempt) for attempt in range(1, 12)]
    assert all(0.25 <= delay <= 4.0 for delay in delays)
    assert max(delays[5:]) <= 4.0
    assert min(delays[5:]) >= 2.0


def test_bad_frames_are_logged_at_most_once_per_interval(tmp_path: Path) -> None:
    from edge_agent.modules.can_reader.module import prepare_bus

    config = config_for(tmp_path, [bus_entry("c", "x", BENCH_DBC)], bad_frame_log_interval_s=10)
    settings = config.modules[NAME].config
    lines: list[tuple[str, dict[str, Any]]] = []

    def record(level: str) -> Any:
        return lambda event, **fields: lines.append((level, {"event": event, **fields}))

    log = SimpleNamespace(warning=record("warning"), info=record("info"))
    context: Any = SimpleNamespace(clock=SystemClock(), log=log)
    connection = BusConnection(
        settings.buses[0], prepare_bus(settings.buses[0]).decoder, settings, context
    )
    connection.counters.decode_failures = 5
    connection.tick(100.0)
    connection.counters.decode_failures = 9
    connection.tick(105.0)  # within the interval: nothing
    connection.tick(111.0)
    assert [(level, fields["new"], fields["total"]) for level, fields in lines] == [
        ("warning", 5, 5),
        ("warning", 4, 9),
    ]
    assert all(fields["kind"] == "undecodable frames" for _, fields in lines)


async def test_a_bus_with_an_arxml_database_decodes(
    tmp_path: Path, channels: dict[str, str], senders: dict[str, can.BusABC]
) -> None:
    config = config_for(tmp_path, [bus_entry("radar", channels["radar"], RADAR_ARXML)])
    async with agent(config) as supervisor:
        decoded = supervisor.bus.subscribe("can/+/decoded/#", maxsize=10)
        await running(supervisor)
        senders["radar"].send(frame(0x200, bytes([0x10, 0x02, 0x01]) + bytes(5)))
        message = await decoded.get()
        assert message.topic == "can/radar/decoded/RadarObject"
        assert isinstance(message.payload, DecodedMessage)
        assert message.payload.signals == {"ObjectDistance": 528, "ObjectValid": 1}
