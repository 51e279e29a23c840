"""The health file on a full disk: rewritten in place, so ``edge-agent status`` keeps working."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli.main import main
from edge_agent.health import HEALTH_FILE, HealthFile, write_health_file
from fixtures.disks import fill_up, tmpfs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root or CAP_SYS_ADMIN; skipped, saying why, without)."""
    with tmpfs(tmp_path / "small-disk", "1m") as mount_point:
        yield mount_point


def snapshot(spool: dict[str, Any], padding: str = "") -> dict[str, Any]:
    agent = {
        "pid": os.getpid(),
        "version": "9.9.9",
        "vehicle_id": "car-1",
        "state": "running",
        "ready": True,
        "started_at": time.time() - 60,
        "updated_at": time.time(),
        "health_interval_s": 1.0,
        "loop_lag_ms": 0.5,
        "padding": padding,
    }
    return {"agent": agent, "modules": {}, "bus": [], "spool": spool}


def test_a_full_disk_gets_the_health_file_rewritten_in_place(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_health_file(small_disk, snapshot({"storage": "disk", "records": 5}, "x" * 500))
    fill_up(small_disk)
    spool = {
        "storage": "memory",
        "records": 7,
        "bytes": 900,
        "memory_records": 7,
        "degraded": True,
        "degraded_reason": "cannot open spool.db: database or disk is full",
    }
    write_health_file(small_disk, snapshot(spool))  # shorter than the old text: padded
    assert HealthFile(small_disk).read(time.time())["spool"] == spool
    assert [p.name for p in small_disk.iterdir() if p.name != "filler"] == [HEALTH_FILE]
    assert main(["status", "--state-dir", str(small_disk)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split() == [
        "spool",
        "memory",
        "records=7",
        "bytes=900",
        "in_memory=7",
        "degraded:",
        "cannot",
        "open",
        "spool.db:",
        "database",
        "or",
        "disk",
        "is",
        "full",
    ]
    # More than the blocks the old file holds cannot be written without free space.
    with pytest.raises(OSError, match="No space left"):
        write_health_file(small_disk, snapshot(spool, "x" * 100_000))
    assert HealthFile(small_disk).read(time.time())["spool"] == spool


def test_a_snapshot_that_grows_on_a_full_disk_still_fits(small_disk: Path) -> None:
    """A degraded agent says more than a healthy one (reasons, memory figures, errors): the
    file written while there was space keeps room for that, or it would stay frozen at the
    last healthy snapshot."""
    write_health_file(small_disk, snapshot({"storage": "disk", "records": 5}, "x" * 4000))
    fill_up(small_disk)
    grown = {"storage": "memory", "memory_records": 3, "degraded": True, "reason": "y" * 4000}
    write_health_file(small_disk, snapshot(grown, "x" * 4000))
    assert HealthFile(small_disk).read(time.time())["spool"] == grown
