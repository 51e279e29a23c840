"""Fault matrix (d): the wall clock jumps an hour forward, then two hours back, while running.

The agent runs under libfaketime (Debian package ``faketime``) with a timestamp file it
re-reads on every call (``FAKETIME_NO_CACHE``), so the test moves the agent's wall clock
while it runs; ``FAKETIME_DONT_FAKE_MONOTONIC`` keeps the monotonic clock real, as on a
vehicle whose RTC or NTP steps. No broker, so records stay in the spool throughout.
Pass, in each phase (now, +1 h, -1 h): the fast path keeps deciding, the heartbeat keeps
beating, telemetry keeps cutting batches, every module keeps running; at the end no spool
record has expired. Spool TTLs are days (docs/spool.md), so an hour either way cannot
expire anything; a forward jump past a TTL would.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge_agent.simulator.rig.agent import Agent, agent_config
from fixtures.agent_rig import (
    Vehicle,
    agents,
    all_running,
    decisions,
    namespace,
    start_agent,
)
from fixtures.waiting import wait_until_sync

__all__ = ["agents", "namespace"]

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def details(agent: Agent, module: str) -> dict[str, int]:
    found: dict[str, int] = agent.module(module).get("details", {})
    return found


@pytest.mark.slow
def test_wall_clock_jumps_leave_the_agent_working(
    namespace: str, agents: list[Agent], tmp_path: Path
) -> None:
    if not LIBFAKETIME.exists():
        pytest.skip(f"SKIPPED: libfaketime not installed ({LIBFAKETIME}): apt-get install faketime")
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    agent = start_agent(agents, namespace, tmp_path, agent_config(tmp_path / "state"), env)
    vehicle = Vehicle(namespace, 24.0)
    try:
        wall_seen: list[float] = []
        for shift in ("+0", "+1h", "-1h"):
            offset.write_text(shift + "\n")
            decided = decisions(agent)
            beats = details(agent, "heartbeat").get("beats", 0)
            batches = details(agent, "telemetry").get("batches", 0)
            wait_until_sync(
                lambda d=decided: decisions(agent) - d >= 300,
                timeout=10,
                what=f"decisions at {shift}",
            )
            wait_until_sync(
                lambda b=beats: details(agent, "heartbeat")["beats"] >= b + 2,
                timeout=10,
                what=f"beats {shift}",
            )
            wait_until_sync(
                lambda b=batches: details(agent, "telemetry")["batches"] > b,
                timeout=10,
                what=f"batch {shift}",
            )
            assert all_running(agent) == {}, shift
            wall_seen.append(agent.health()["agent"]["updated_at"] - time.time())
    finally:
        counts = vehicle.result()
    assert counts["brake_frames"] >= 0.95 * counts["radar_frames"], counts
    # The agent really saw the jumps: its health timestamps are offset by about +1 h, -1 h.
    assert abs(wall_seen[0]) < 60
    assert abs(wall_seen[1] - 3600) < 60
    assert abs(wall_seen[2] + 3600) < 60
    spool = agent.health()["spool"]
    assert spool["records"] > 0
    assert sum(p["expired"] for p in spool["by_priority"].values()) == 0, spool
    assert agent.alive()
