"""A spool that cannot use its disk keeps records in memory, then moves them back in order.

The synchronous core (``ResilientSpool``) is driven by a hand-moved clock; the async facade
is shown to salvage a damaged file only once repairs are allowed (the agent allows them at
READY); real full file systems (small tmpfs mounts) show the disk-full cases.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from spool_helpers import BootClock

from edge_agent.spool import (
    AppendRequest,
    AsyncSpool,
    ResilientSpool,
    Spool,
    SpoolDiskFull,
    SpoolPolicy,
    SpoolPriority,
    SpoolStorage,
)
from fixtures.disks import fill_up, tmpfs
from fixtures.waiting import wait_until

EVENTS = SpoolPriority.EVENTS
HIGH = SpoolPriority.TELEMETRY_HIGH
LOW = SpoolPriority.TELEMETRY_LOW
KIB = 1024
RETRY_S = 5.0


def resilient(path: Path, clock: BootClock, policy: SpoolPolicy | None = None) -> ResilientSpool:
    """A ResilientSpool wired as AsyncSpool wires it, on the hand-moved clock."""
    policy = policy or SpoolPolicy(reserve_bytes=64 * KIB)
    in_memory = dataclasses.replace(policy, max_bytes=policy.memory_bytes, reserve_bytes=0)
    options = {"now": clock.now, "monotonic": clock.monotonic, "age_clock": clock.ages()}
    return ResilientSpool(
        path,
        policy,
        lambda salvage_on_open: Spool(path, policy, salvage_on_open=salvage_on_open, **options),
        lambda first_id: Spool(path, in_memory, in_memory=True, first_id=first_id, **options),
        now=clock.now,
        monotonic=clock.monotonic,
        retry_interval=RETRY_S,
    )


def test_records_wait_in_memory_while_the_file_cannot_be_opened_then_move_in_order(
    tmp_path: Path,
) -> None:
    clock = BootClock()
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    path = blocker / "spool" / "spool.db"
    spool = resilient(path, clock)
    try:
        stats = spool.stats()
        assert stats.storage is SpoolStorage.MEMORY
        assert stats.degraded
        assert "cannot open" in stats.degraded_reason
        sent = [AppendRequest("low", b"low-%d" % i, LOW, b"low-%d" % i) for i in range(5)]
        sent += [AppendRequest("event", b"event-0", EVENTS, b"event-0")]
        sent += [AppendRequest("high", b"high-%d" % i, HIGH, b"high-%d" % i) for i in range(3)]
        assert all(r.stored for r in spool.append_many(sent))
        in_flight = spool.lease(2)  # the uplink has the event and the first high record
        assert [r.message_id for r in in_flight] == [b"event-0", b"high-0"]
        blocker.unlink()
        spool.maintain()  # not due yet: retries are paced
        assert spool.stats().storage is SpoolStorage.MEMORY
        clock.advance(RETRY_S)
        spool.maintain()
        stats = spool.stats()
        assert stats.storage is SpoolStorage.DISK
        assert not stats.degraded, stats.degraded_reason
        assert (stats.moved_to_disk, stats.records, stats.memory_records) == (9, 9, 0)
        # The uplink acks by the ids it was given; nothing in flight goes out twice.
        assert spool.ack([r.id for r in in_flight]) == 2
        rest = spool.lease(100)
        assert [r.message_id for r in rest] == [b"high-1", b"high-2"] + [
            f"low-{i}".encode() for i in range(5)
        ]
        assert stats.by_priority["telemetry_low"].appended == 5
    finally:
        spool.close()
    with Spool(path) as reopened:  # durable now
        assert reopened.stats().records == 7


def test_the_memory_queue_is_bounded_by_its_stated_policy(tmp_path: Path) -> None:
    clock = BootClock()
    blocker = tmp_path / "state"
    blocker.write_text("")
    limit = 32 * KIB
    spool = resilient(blocker / "spool.db", clock, SpoolPolicy(memory_bytes=limit))
    try:
        # Telemetry: the degrade ladder of the disk spool, at the memory limit.
        for _ in range(100):
            assert spool.append_many([AppendRequest("low", bytes(KIB), LOW)])[0].stored
            assert spool.stats().memory_bytes <= limit
        low = spool.stats().by_priority["telemetry_low"]
        assert low.downsampled + low.dropped > 0
        # Events push everything else out and may pass the limit, up to twice it.
        stored = 0
        event = [AppendRequest("event", bytes(KIB), EVENTS)]
        while spool.stats().memory_bytes + KIB + 64 <= 2 * limit:
            assert spool.append_many(event)[0].stored
            stored += 1
        with pytest.raises(SpoolDiskFull, match="memory queue is full"):
            spool.append_many(event)
        stats = spool.stats()
        assert stats.by_priority["events"].records == stored
        assert limit < stats.memory_bytes <= 2 * limit
        assert stats.by_priority["telemetry_low"].records == 0
    finally:
        spool.close()


def wreck_tail(path: Path, records: int) -> None:
    with Spool(path, SpoolPolicy(reserve_bytes=0)) as spool:
        for i in range(records):
            spool.append("old", f"old-{i:03d}".encode() + bytes(1000), priority=HIGH)
    os.truncate(path, path.stat().st_size * 2 // 3)


async def storage_becomes(spool: AsyncSpool, storage: SpoolStorage, seconds: float = 30.0) -> None:
    """Until the spool reports ``storage``."""

    async def reached() -> bool:
        return (await spool.stats()).storage is storage

    await wait_until(reached, timeout=seconds, what=f"spool storage {storage.name}", poll_s=0.05)


async def test_a_damaged_file_is_salvaged_in_the_background_once_repairs_are_allowed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    wreck_tail(path, 200)
    damaged_before = path.read_bytes()
    spool = await AsyncSpool.open(path, hold_repairs=True, retry_interval=0.05)
    try:
        stats = await spool.stats()
        assert stats.storage is SpoolStorage.MEMORY
        assert stats.salvage_pending
        assert "damaged" in stats.degraded_reason
        assert (await spool.append("new", b"new-0", priority=HIGH)).stored
        # Held: nothing touches the file until the agent says it is ready.
        assert (await spool.stats()).salvage_pending
        assert path.read_bytes() == damaged_before
        assert not list(tmp_path.glob("spool.db.damaged-*"))
        spool.allow_repairs()
        await storage_becomes(spool, SpoolStorage.DISK)
        stats = await spool.stats()
        assert (stats.salvaged_files, stats.damaged_files, stats.salvage_pending) == (1, 1, False)
        streams = [r.stream for r in await spool.lease(1000)]
        assert 100 < streams.count("old") < 200
        assert streams[-1] == "new"  # older records first, the new one after them
    finally:
        await spool.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs root or CAP_SYS_ADMIN; skipped, saying why, without)."""
    with tmpfs(tmp_path / "small-disk", "2m") as mount_point:
        yield mount_point


def test_a_spool_on_a_full_disk_opens_in_memory_and_moves_to_disk_when_space_returns(
    small_disk: Path,
) -> None:
    clock = BootClock()
    path = small_disk / "spool.db"
    filler = fill_up(small_disk)
    spool = resilient(path, clock)
    try:
        stats = spool.stats()
        assert stats.storage is SpoolStorage.MEMORY
        assert "full" in stats.degraded_reason
        ids = [spool.append_many([AppendRequest("s", bytes(KIB), HIGH)])[0] for _ in range(20)]
        assert all(result.stored for result in ids)
        clock.advance(RETRY_S)
        spool.maintain()  # still full: it does not even try
        assert spool.stats().storage is SpoolStorage.MEMORY
        filler.unlink()
        clock.advance(RETRY_S)
        spool.maintain()
        stats = spool.stats()
        assert stats.storage is SpoolStorage.DISK
        assert stats.reserve_present
        assert [r.message_id for r in spool.lease(100)] == [r.message_id for r in ids]
    finally:
        spool.close()


def test_records_a_full_disk_refuses_are_kept_in_memory_not_lost(small_disk: Path) -> None:
    clock = BootClock()
    path = small_disk / "spool.db"
    spool = resilient(path, clock, SpoolPolicy(reserve_bytes=64 * KIB))
    try:
        before = spool.append_many([AppendRequest("event", b"before", EVENTS)])[0]
        assert spool.stats().reserve_present
        filler = fill_up(small_disk)
        results = spool.append_many(
            [AppendRequest("s", bytes(4 * KIB), HIGH) for _ in range(40)]
            + [AppendRequest("event", b"during", EVENTS)]
        )
        assert all(result.stored for result in results)
        stats = spool.stats()
        assert stats.storage is SpoolStorage.DISK_AND_MEMORY
        assert stats.memory_records > 0
        assert stats.by_priority["telemetry_high"].refused == 0  # kept, not refused
        filler.unlink()
        clock.advance(RETRY_S)
        spool.maintain()
        stats = spool.stats()
        assert stats.storage is SpoolStorage.DISK
        assert stats.records == 42
        leased = [r.message_id for r in spool.lease(100)]
        expected = [before.message_id, results[-1].message_id]
        expected += [r.message_id for r in results[:-1]]
        assert leased == expected
    finally:
        spool.close()
