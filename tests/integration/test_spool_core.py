"""The spool against a real SQLite file: order, ack, leases, reopen, locking."""

from __future__ import annotations

from pathlib import Path

import pytest
from spool_helpers import BootClock

from edge_agent.spool import (
    AppendRequest,
    Spool,
    SpoolClosed,
    SpoolLocked,
    SpoolPolicy,
    SpoolPriority,
)

EVENTS = SpoolPriority.EVENTS
CONTROL = SpoolPriority.CONTROL
HIGH = SpoolPriority.TELEMETRY_HIGH
LOW = SpoolPriority.TELEMETRY_LOW


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "spool.db"


def test_lease_hands_out_priority_first_then_in_order_per_stream(path: Path) -> None:
    with Spool(path) as spool:
        for i in range(5):
            spool.append("chassis", f"c{i}".encode(), priority=LOW)
            spool.append("powertrain", f"p{i}".encode(), priority=LOW)
        spool.append("events", b"brake", priority=EVENTS)
        spool.append("state", b"reported", priority=CONTROL)
        records = spool.lease(100)
        assert [r.payload for r in records[:2]] == [b"brake", b"reported"]
        chassis = [r.payload for r in records if r.stream == "chassis"]
        assert chassis == [f"c{i}".encode() for i in range(5)]
        assert [r.id for r in records[2:]] == sorted(r.id for r in records[2:])


def test_lease_does_not_remove_and_does_not_hand_out_twice(path: Path) -> None:
    with Spool(path) as spool:
        for i in range(10):
            spool.append("s", bytes([i]))
        first = spool.lease(4)
        second = spool.lease(4)
        assert {r.id for r in first}.isdisjoint(r.id for r in second)
        assert spool.stats().records == 10
        assert spool.stats().leased == 8


def test_ack_removes_and_unacked_records_survive_reopen(path: Path) -> None:
    with Spool(path) as spool:
        ids = [spool.append("s", bytes([i])).record_id for i in range(10)]
        leased = spool.lease(6)
        assert spool.ack([r.id for r in leased[:4]]) == 4
        assert spool.ack([leased[0].id]) == 0  # acking twice is harmless
    with Spool(path) as spool:
        remaining = spool.lease(100)
        assert [r.id for r in remaining] == ids[4:]  # leases do not survive: all resent
        assert spool.stats().records == 6


def test_message_id_is_kept_so_a_resend_is_recognisable(path: Path) -> None:
    given = bytes(range(16))
    with Spool(path) as spool:
        result = spool.append("s", b"batch", message_id=given)
        assert result.message_id == given
        generated = spool.append("s", b"other").message_id
        assert len(generated) == 16
    with Spool(path) as spool:
        assert [r.message_id for r in spool.lease(10)] == [given, generated]


def test_released_records_go_out_again_before_newer_ones(path: Path) -> None:
    with Spool(path) as spool:
        for i in range(6):
            spool.append("s", bytes([i]))
        first = spool.lease(3)
        spool.release([first[1].id])
        again = spool.lease(2)
        assert [r.payload for r in again] == [bytes([1]), bytes([3])]


def test_stale_leases_are_released_after_the_timeout(path: Path) -> None:
    clock = BootClock()
    policy = SpoolPolicy(lease_timeout=30.0)
    with Spool(path, policy, now=clock.now, monotonic=clock.monotonic) as spool:
        spool.append("s", b"a")
        assert len(spool.lease(10)) == 1
        assert spool.lease(10) == []
        clock.advance(31)
        assert [r.payload for r in spool.lease(10)] == [b"a"]


def test_lease_respects_a_byte_budget_but_returns_at_least_one(path: Path) -> None:
    with Spool(path) as spool:
        for _ in range(5):
            spool.append("s", b"x" * 1000)
        assert len(spool.lease(10, max_bytes=2500)) == 2
        assert len(spool.lease(10, max_bytes=10)) == 1


def test_lease_can_be_limited_to_priorities(path: Path) -> None:
    with Spool(path) as spool:
        spool.append("s", b"low", priority=LOW)
        spool.append("e", b"event", priority=EVENTS)
        assert [r.payload for r in spool.lease(10, priorities=[LOW])] == [b"low"]


def test_group_commit_stores_every_record_of_the_group(path: Path) -> None:
    with Spool(path) as spool:
        results = spool.append_many(
            [AppendRequest("s", bytes([i]), LOW if i % 2 else EVENTS) for i in range(50)]
        )
        assert all(r.stored for r in results)
        assert len({r.record_id for r in results}) == 50
    with Spool(path) as spool:
        assert spool.stats().records == 50


def test_a_second_process_cannot_open_the_same_spool(path: Path) -> None:
    with Spool(path) as spool:
        spool.append("s", b"a")
        with pytest.raises(SpoolLocked, match="in use"):
            Spool(path)


def test_closed_spool_says_so_and_close_is_idempotent(path: Path) -> None:
    spool = Spool(path)
    spool.close()
    spool.close()
    with pytest.raises(SpoolClosed):
        spool.append("s", b"a")


def test_bad_records_are_refused_at_the_door(path: Path) -> None:
    with Spool(path) as spool:
        with pytest.raises(TypeError):
            spool.append("s", "text")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            spool.append("", b"x")


def test_stats_report_the_durability_policy_and_live_figures(path: Path) -> None:
    with Spool(path) as spool:
        spool.append("s", b"x" * 100, priority=HIGH)
        stats = spool.stats().as_dict()
        assert "synchronous=FULL" in stats["durability"]
        assert stats["by_priority"]["telemetry_high"]["records"] == 1
        assert stats["by_priority"]["telemetry_high"]["bytes"] == 100 + 64
        assert stats["reserve_present"] is True
        assert stats["file_bytes"] > 0
