"""Damaged copies (``spool.db.damaged-N``) are bounded and count against the byte cap."""

from __future__ import annotations

from pathlib import Path

from edge_agent.spool import AppendRequest, Spool, SpoolPolicy, SpoolPriority

KIB = 1024


def wreck(path: Path, records: int, payload: int = 1000) -> None:
    """Leave a spool at ``path`` holding ``records`` records, then make it unreadable."""
    with Spool(path, SpoolPolicy(reserve_bytes=0)) as spool:
        requests = [AppendRequest("s", bytes(payload), SpoolPriority.EVENTS)] * records
        assert all(r.stored for r in spool.append_many(requests))
    data = bytearray(path.read_bytes())
    data[:16] = b"not a database!!"  # the header: quick_check cannot even start
    path.write_bytes(bytes(data))


def copies(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(f"{path.name}.damaged-*"))


def test_at_most_n_copies_are_kept_the_oldest_pruned(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    policy = SpoolPolicy(reserve_bytes=0, max_damaged_copies=2)
    for _ in range(4):
        wreck(path, 5)
        with Spool(path, policy) as spool:
            assert len(spool.salvage_reports) == 1
            stats = spool.stats()
            assert stats.damaged_files == len(copies(path)) <= 2
    # Numbers follow the order the copies were made in: the two newest are left.
    assert copies(path) == ["spool.db.damaged-3", "spool.db.damaged-4"]
    with Spool(path, SpoolPolicy(reserve_bytes=0, max_damaged_copies=0)) as spool:
        assert spool.stats().damaged_files == 0
    assert copies(path) == []


def test_copies_count_against_the_cap_and_never_take_more_than_half(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    wreck(path, 40)  # about 50 KiB of file
    cap = 200 * KIB
    policy = SpoolPolicy(max_bytes=cap, reserve_bytes=0, quotas={}, ttls={})
    with Spool(path, policy) as spool:
        stats = spool.stats()
        (copy,) = copies(path)
        damaged = (tmp_path / copy).stat().st_size
        assert stats.damaged_bytes == damaged > 0
        # Telemetry is degraded to fit in what the copy leaves of the cap, no more.
        cost = 4 * KIB + policy.record_overhead
        peak = 0
        for _ in range(3 * cap // cost):
            assert spool.append("s", bytes(4 * KIB), priority=SpoolPriority.TELEMETRY_HIGH).stored
            peak = max(peak, spool.stats().bytes)
        assert cap - damaged - cost < peak <= cap - damaged
        assert spool.stats().by_priority["telemetry_high"].downsampled > 0
    # A cap so small that the copy would take more than half of it: the copy goes.
    with Spool(path, SpoolPolicy(max_bytes=2 * damaged - 1, reserve_bytes=0)) as spool:
        assert spool.stats().damaged_files == 0
    assert copies(path) == []
