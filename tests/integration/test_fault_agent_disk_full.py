"""Fault matrix (c), agent level: the spool's disk fills up while the vehicle drives.

The spool lives on a 4 MiB tmpfs the test mounts and then fills, leaving 64 KiB. Pass:
the spool reports ``disk_full``; the fast path answers at least 95 % of the radar frames
and the CAN reader keeps decoding both buses meanwhile; every module keeps running; when
the space comes back the spool leaves the disk-full state. (The spool's own behaviour on a
full disk is tests/integration/test_spool_disk_full.py.)
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.simulator.rig.agent import Agent, agent_config, load_traffic
from fixtures.agent_rig import (
    Vehicle,
    agents,
    all_running,
    bus_frames,
    decisions,
    namespace,
    start_agent,
)
from fixtures.disks import tmpfs
from fixtures.waiting import wait_until_sync

__all__ = ["agents", "namespace"]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (skipped, saying why, when it cannot be mounted)."""
    with tmpfs(tmp_path / "tiny-disk", "4m") as mount_point:
        yield mount_point


def spool(agent: Agent) -> dict[str, object]:
    """The spool's entry of the health file."""
    stats: dict[str, object] = agent.health().get("spool") or {}
    return stats


@pytest.mark.slow
def test_full_spool_disk_does_not_stop_braking_or_ingest(
    namespace: str, agents: list[Agent], tiny_disk: Path, tmp_path: Path
) -> None:
    config = agent_config(
        tmp_path / "state",
        load_bus=True,
        spool={"path": str(tiny_disk / "spool.db"), "max_mb": 64, "reserve_mb": 0.25},
    )
    agent = start_agent(agents, namespace, tmp_path, config)
    status = os.statvfs(tiny_disk)
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * max(0, status.f_bavail * status.f_frsize - 64 * 1024))
    load = subprocess.Popen(load_traffic(namespace, 3000, 16), stdout=subprocess.DEVNULL)
    decided, vehicle_frames = decisions(agent), bus_frames(agent, "vehicle")
    powertrain = bus_frames(agent, "powertrain")
    vehicle = Vehicle(namespace, 14.0)
    wait_until_sync(
        lambda: spool(agent).get("disk_full") is True,
        timeout=15,
        what="the spool to report disk_full",
    )
    assert all_running(agent) == {}
    counts = vehicle.result()
    load.wait(timeout=30)
    assert counts["brake_frames"] >= 0.95 * counts["radar_frames"], counts
    wait_until_sync(
        lambda: decisions(agent) - decided >= 0.95 * counts["radar_frames"],
        timeout=5,
        what="decisions",
    )
    assert bus_frames(agent, "vehicle") - vehicle_frames >= 0.9 * 1.5 * counts["radar_frames"]
    assert bus_frames(agent, "powertrain") - powertrain >= 0.9 * 3000 * 14
    assert all_running(agent) == {}
    assert spool(agent).get("disk_full") is True
    filler.unlink()
    # The next append finds room again (the vehicle is gone: drive telemetry from the load).
    load = subprocess.Popen(load_traffic(namespace, 3000, 10), stdout=subprocess.DEVNULL)
    try:
        wait_until_sync(
            lambda: spool(agent).get("disk_full") is False, timeout=10, what="disk_full to clear"
        )
    finally:
        load.kill()
        load.wait()
    assert agent.alive()
