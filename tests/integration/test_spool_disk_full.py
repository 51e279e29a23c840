"""A full disk: low priority degrades or is refused softly, events still go in, it recovers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.spool import Spool, SpoolPolicy, SpoolPriority
from fixtures.disks import tmpfs

KIB = 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs root or CAP_SYS_ADMIN; skipped, saying why, without)."""
    with tmpfs(tmp_path / "small-disk", "2m") as mount_point:
        yield mount_point


def fill_disk(directory: Path, leave: int) -> Path:
    """Write a filler file until only ``leave`` bytes stay free."""
    filler = directory / "filler"
    status = os.statvfs(directory)
    free = status.f_bavail * status.f_frsize
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


def test_full_disk_degrades_low_priority_keeps_events_and_recovers(small_disk: Path) -> None:
    policy = SpoolPolicy(
        max_bytes=64 * 1024 * KIB, reserve_bytes=192 * KIB, wal_autocheckpoint_pages=32
    )
    with Spool(small_disk / "spool.db", policy) as spool:
        assert spool.stats().reserve_present
        filler = fill_disk(small_disk, leave=256 * KIB)
        outcomes = [spool.append("cabin", os.urandom(4 * KIB)) for _ in range(150)]
        stats = spool.stats()
        low = stats.by_priority["telemetry_low"]
        assert stats.disk_full
        assert stats.degraded
        refused = [o for o in outcomes if not o.stored]
        assert all(o.refused == "disk-full" for o in refused)
        assert low.refused == len(refused)
        assert refused or low.dropped + low.downsampled > 0  # soft: degraded or refused
        # Events still go in: low telemetry makes room first, then the reserve is given up.
        events = [
            spool.append("events", os.urandom(4 * KIB), priority=SpoolPriority.EVENTS)
            for _ in range(30)
        ]
        assert all(event.stored for event in events)
        assert spool.stats().by_priority["events"].records == 30
        # Space comes back: the spool leaves the disk-full state and takes its reserve again.
        filler.unlink()
        assert spool.append("cabin", os.urandom(4 * KIB)).stored
        stats = spool.stats()
        assert not stats.disk_full
        assert stats.reserve_present
        leased = spool.lease(1000, priorities=[SpoolPriority.EVENTS])
        assert {r.message_id for r in leased} == {e.message_id for e in events}
