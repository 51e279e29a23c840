"""Fault matrix (d'): an RTC-less ECU steps its wall clock forward months on its first sync.

The agent runs under libfaketime as in test_fault_clock_jump.py (a timestamp file it
re-reads, the monotonic and boot clocks left real), starting 100 days in the past, as an
ECU without a battery-backed clock boots with a stale time. It spools telemetry (no
broker, so records stay), then the clock steps forward to the present: 100 days, far more
than the longest spool TTL (7 days). Pass: no record expires; the spool keeps every record
and keeps taking new ones; the fast path keeps deciding. (Before expiry was measured on
the boot clock, this step expired everything spooled before it.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge_agent.simulator.rig.agent import Agent, agent_config
from edge_agent.spool.model import DAY, DEFAULT_TTLS
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
STALE_BY_DAYS = 100


def batches(agent: Agent) -> int:
    return int(agent.module("telemetry").get("details", {}).get("batches", 0))


def expired(agent: Agent) -> int:
    spool = agent.health().get("spool", {})
    return sum(p["expired"] for p in spool.get("by_priority", {}).values())


@pytest.mark.slow
def test_a_forward_step_beyond_the_longest_ttl_expires_nothing(
    namespace: str, agents: list[Agent], tmp_path: Path
) -> None:
    if not LIBFAKETIME.exists():
        pytest.skip(f"SKIPPED: libfaketime not installed ({LIBFAKETIME}): apt-get install faketime")
    assert max(DEFAULT_TTLS.values()) < STALE_BY_DAYS * DAY
    offset = tmp_path / "faketime"
    offset.write_text(f"-{STALE_BY_DAYS}d\n")
    env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # CLOCK_MONOTONIC and CLOCK_BOOTTIME stay real
    }
    agent = start_agent(agents, namespace, tmp_path, agent_config(tmp_path / "state"), env)
    vehicle = Vehicle(namespace, 20.0)
    try:
        wait_until_sync(
            lambda: batches(agent) >= 3, timeout=15, what="telemetry batches before the time sync"
        )
        before = agent.health()
        assert before["agent"]["updated_at"] < time.time() - (STALE_BY_DAYS - 1) * DAY
        spooled = before["spool"]["records"]
        assert spooled >= 3
        offset.write_text("+0\n")  # the first time sync
        cut = batches(agent)
        decided = decisions(agent)
        # Two more batches: appends after the step, each applying the TTLs (expiry is due
        # at most once a second, and the step made it due at once).
        wait_until_sync(
            lambda: batches(agent) >= cut + 2, timeout=15, what="batches after the time sync"
        )
        wait_until_sync(
            lambda: decisions(agent) - decided >= 300,
            timeout=10,
            what="fast-path decisions after it",
        )
        after = agent.health()
        assert abs(after["agent"]["updated_at"] - time.time()) < 60  # the step happened
        assert expired(agent) == 0, after["spool"]["by_priority"]
        assert after["spool"]["records"] >= spooled + 2
        assert all_running(agent) == {}
    finally:
        counts = vehicle.result()
    assert counts["brake_frames"] >= 0.95 * counts["radar_frames"], counts
