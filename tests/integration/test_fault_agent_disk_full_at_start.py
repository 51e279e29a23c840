"""Fault matrix (c''): the agent starts on a disk that is already full.

A vehicle ran yesterday on a 4 MiB tmpfs holding the whole state directory (spool, health
file, module state) and left records in the spool; overnight something else filled the
disk to the last byte. Pass: ``edge-agent run`` reaches READY with every module running
(the fast path brakes), the spool says it keeps records in memory (health and
``edge-agent status``), telemetry is held in memory meanwhile; once space returns the spool
goes back to disk by itself, and every record is there: yesterday's and today's.
Run with the disk reserve (given up at start, so the health file has room) and without
(the health file is then rewritten in place).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.simulator.rig.agent import Agent, agent_config
from fixtures.agent_rig import Vehicle, agents, all_running, namespace, start_agent
from fixtures.disks import fill_up, tmpfs
from fixtures.waiting import wait_until_sync

__all__ = ["agents", "namespace"]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (skipped, saying why, when it cannot be mounted)."""
    with tmpfs(tmp_path / "tiny-disk", "4m") as mount_point:
        yield mount_point


def spool(agent: Agent) -> dict[str, Any]:
    """The spool's entry of the health file."""
    stats: dict[str, Any] = agent.health().get("spool") or {}
    return stats


def ready(agent: Agent) -> bool:
    """Whether this agent process (not an earlier one) wrote a ready health file."""
    own = agent.health().get("agent", {})
    return bool(own.get("pid") == agent.pid and own.get("ready"))


def records_in(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        count: int = connection.execute("SELECT count(*) FROM records").fetchone()[0]
    connection.close()
    return count


@pytest.mark.slow
@pytest.mark.parametrize("reserve_mb", [0.25, 0.0], ids=["reserve", "no-reserve"])
def test_the_agent_starts_on_a_full_disk_and_the_spool_recovers_by_itself(
    namespace: str, agents: list[Agent], tiny_disk: Path, tmp_path: Path, reserve_mb: float
) -> None:
    state = tiny_disk / "state"
    spool_file = state / "spool" / "spool.db"
    config = agent_config(state, spool={"max_mb": 64, "reserve_mb": reserve_mb})
    yesterday = start_agent(agents, namespace, tmp_path / "yesterday", config)
    Vehicle(namespace, 5.0).result()
    wait_until_sync(
        lambda: spool(yesterday).get("records", 0) > 0, timeout=10, what="yesterday's batches"
    )
    assert yesterday.stop() == 0
    left_behind = records_in(spool_file)
    filler = fill_up(tiny_disk)

    agent = start_agent(agents, namespace, tmp_path / "today", config)
    # Yesterday's last health file says "ready" too: wait for today's agent's own.
    wait_until_sync(
        lambda: ready(agent) or not agent.alive(), timeout=40, what="today's agent to be ready"
    )
    assert agent.alive(), f"the agent exited with {agent.stop()}: {agent.log()}"
    assert all_running(agent) == {}
    stats = spool(agent)
    assert stats["storage"] in ("memory", "disk+memory"), stats
    assert stats["degraded"]
    assert "full" in stats["degraded_reason"]
    status = subprocess.run(
        [sys.executable, "-m", "edge_agent", "status", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    (line,) = [text for text in status.stdout.splitlines() if text.strip().startswith("spool")]
    assert stats["storage"] in line
    assert "degraded: " in line

    counts = Vehicle(namespace, 6.0).result()
    assert counts["brake_frames"] >= 0.95 * counts["radar_frames"], counts
    wait_until_sync(
        lambda: spool(agent).get("memory_records", 0) > 0, timeout=60, what="batches kept in memory"
    )
    held = spool(agent)["memory_records"]
    assert all_running(agent) == {}

    filler.unlink()
    wait_until_sync(
        lambda: spool(agent).get("storage") == "disk", timeout=30, what="the spool back on disk"
    )
    stats = spool(agent)
    assert stats["moved_to_disk"] >= held
    assert stats["reserve_present"]
    assert not stats["degraded"], stats["degraded_reason"]
    # The memory queue's loss policy never had to act (far below its 8 MiB): all is kept.
    lost = sum(p["dropped"] + p["expired"] + p["refused"] for p in stats["by_priority"].values())
    assert lost == 0, stats["by_priority"]
    appended = sum(p["appended"] for p in stats["by_priority"].values())
    assert stats["records"] == left_behind + appended
    assert all_running(agent) == {}
    assert agent.stop() == 0
    assert records_in(spool_file) == left_behind + appended
