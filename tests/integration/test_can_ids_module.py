"""The can-ids module with the CAN reader in a real Supervisor, on a python-can virtual bus."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import can
import pytest

from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.modules.can_ids.offline import train
from edge_agent.modules.can_ids.profile import save_profile
from edge_agent.sdnotify import SystemdNotifier
from edge_agent.supervisor import Supervisor
from fixtures.can_helpers import BENCH_DBC, frame, no_leaked_channels
from fixtures.ids_traffic import clean_traffic
from fixtures.waiting import wait_until

__all__ = ["no_leaked_channels"]
pytestmark = pytest.mark.usefixtures("no_leaked_channels")


@pytest.fixture
def channel() -> str:
    return f"ids-{uuid.uuid4().hex}"


@pytest.fixture
def sender(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


def config_for(tmp_path: Path, channel: str, profile: Path) -> Any:
    bus = {
        "name": "chassis",
        "interface": "virtual",
        "channel": channel,
        "dbc": str(BENCH_DBC),
        "publish_raw": True,
    }
    return validate_config(
        {
            "agent": {
                "vehicle_id": "test-car",
                "state_dir": str(tmp_path / "state"),
                "health_interval_s": 0.05,
            },
            "modules": {
                "can-reader": {"config": {"buses": [bus], "stats_interval_s": 0.05}},
                "can-ids": {"config": {"profiles": {"chassis": str(profile)}}},
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


async def test_a_flood_on_the_bus_becomes_an_incident_event(
    tmp_path: Path, channel: str, sender: can.BusABC
) -> None:
    profile, _ = train(clean_traffic(30.0, seed=1), "synthetic")
    path = tmp_path / "chassis.json"
    save_profile(profile, path)
    async with agent(config_for(tmp_path, channel, path)) as supervisor:
        events = supervisor.bus.subscribe("cloud/out/events", maxsize=100)
        runner = supervisor.runners["can-ids"]
        await wait_until(
            lambda: runner.state is ModuleState.RUNNING, timeout=10, what="can-ids running"
        )
        sender.send(frame(0x300, bytes([0, 0x5A, 0, 0, 0, 0, 0, 0])))  # a clean frame
        for _ in range(5):  # then the highest-priority id, unknown here, back to back
            sender.send(frame(0x001, bytes(8)))
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(10):
            while not any(e["kind"] == "ids.flooding" for e in seen):
                seen.append((await events.get()).payload)
        flooding = next(e for e in seen if e["kind"] == "ids.flooding")
        assert flooding["bus"] == "chassis"
        assert flooding["can_id"] == "0x001"
        assert flooding["severity"] == "high"
        evidence = flooding["evidence"]
        # Raised by the third 0x001 frame: the frames before it and the two that came after,
        # released when the bus went quiet.
        assert [f[1] for f in evidence["frames"]] == ["0x300"] + ["0x001"] * 5
        assert evidence["raised_at"] == 3
        assert evidence["after"] == 2
        assert {e["kind"] for e in seen} <= {"ids.unknown-id", "ids.flooding"}

        def details() -> dict[str, Any]:
            snapshot = supervisor.snapshot()["modules"]["can-ids"]
            return dict(snapshot["details"]["buses"]["chassis"])

        await wait_until(lambda: details()["frames"] == 6, timeout=10, what="every frame checked")
        assert details()["dropped"] == 0


async def test_a_hand_edited_profile_fails_the_ids_only_with_one_line(
    tmp_path: Path, channel: str
) -> None:
    profile, _ = train(clean_traffic(5.0, seed=1), "synthetic")
    path = tmp_path / "chassis.json"
    save_profile(profile, path)
    path.write_text(path.read_text().replace('"frames": ', '"frames": 1', 1))
    async with agent(config_for(tmp_path, channel, path)) as supervisor:
        await wait_until(
            lambda: "edited by hand" in (supervisor.runners["can-ids"].last_error or ""),
            timeout=10,
            what="can-ids refuses the profile",
        )
        error = supervisor.runners["can-ids"].last_error or ""
        assert "\n" not in error
        assert supervisor.runners["can-ids"].state is not ModuleState.RUNNING
        assert supervisor.runners["can-reader"].state is ModuleState.RUNNING


async def test_a_forged_checksum_goes_upstream_with_the_frames_after_it(
    tmp_path: Path, channel: str, sender: can.BusABC
) -> None:
    # One id with a rolling counter in byte 6 and the simulator's checksum in byte 7, at
    # irregular times: no timing checks, so frames can be sent back to back.
    from edge_agent.modules.can_ids.integrity import CHECKSUMS

    algorithm = CHECKSUMS["inverted-sum-with-id"]

    def payload(n: int) -> bytes:
        data = bytearray([n * 7 & 0xFF, n * 3 & 0xFF, 0, 0, 0, 0, n % 16, 0])
        data[7] = algorithm(bytes(data), 7, 0x180)
        return bytes(data)

    learned = [(1000.0 + n * 0.01 * (1 + n % 5), 0x180, payload(n), False) for n in range(400)]
    profile, _ = train(learned, "synthetic")
    assert profile.ids[0x180].checksum == [7, 8, "inverted-sum-with-id"]
    assert not profile.ids[0x180].periodic
    path = tmp_path / "chassis.json"
    save_profile(profile, path)
    async with agent(config_for(tmp_path, channel, path)) as supervisor:
        events = supervisor.bus.subscribe("cloud/out/events", maxsize=100)
        runner = supervisor.runners["can-ids"]
        await wait_until(
            lambda: runner.state is ModuleState.RUNNING, timeout=10, what="can-ids running"
        )
        for n in range(400, 430):
            data = payload(n)
            if n == 410:  # the attacker changed a byte and could not fix the checksum
                data = bytes([data[0] ^ 0x55]) + data[1:]
            sender.send(frame(0x180, data))
        async with asyncio.timeout(10):
            event = (await events.get()).payload
        assert event["kind"] == "ids.checksum"
        assert event["can_id"] == "0x180"
        evidence = event["evidence"]
        frames = evidence["frames"]
        assert (
            frames[evidence["raised_at"]][2]
            == (bytes([payload(410)[0] ^ 0x55]) + payload(410)[1:]).hex()
        )
        assert 1 <= evidence["after"] <= 16
        assert [f[2] for f in frames[evidence["raised_at"] + 1 :]] == [
            payload(n).hex() for n in range(411, 411 + evidence["after"])
        ]
        assert events.get_nowait() is None  # one alert, one event
