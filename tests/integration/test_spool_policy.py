"""Bounds of the spool: byte cap, quotas, TTL, the degrade ladder, events never dropped."""

from __future__ import annotations

from pathlib import Path

import pytest
from spool_helpers import BootClock, telemetry_batch

from edge_agent.modules.telemetry.batch import decode_batch
from edge_agent.modules.telemetry.transforms import batch_transforms
from edge_agent.spool import AppendRequest, DegradeHook, Spool, SpoolPolicy, SpoolPriority
from edge_agent.streams import StreamRegistry

EVENTS = SpoolPriority.EVENTS
CONTROL = SpoolPriority.CONTROL
HIGH = SpoolPriority.TELEMETRY_HIGH
LOW = SpoolPriority.TELEMETRY_LOW
OVERHEAD = 64


def telemetry_streams() -> StreamRegistry:
    """What the agent hands the spool once telemetry registered its batch transforms.

    These tests name streams without the ``telemetry/`` prefix, so the batch transforms are
    registered for every stream (``#``).
    """
    streams = StreamRegistry()
    streams.register("#", batch_transforms(boot_id=""))
    return streams


def cost(size: int) -> int:
    return size + OVERHEAD


def policy(max_bytes: int, **changes: object) -> SpoolPolicy:
    quotas = {CONTROL: 1.0, HIGH: 1.0, LOW: 1.0}
    settings: dict[str, object] = {"max_bytes": max_bytes, "quotas": quotas, "ttls": {}}
    settings.update(changes)
    return SpoolPolicy(**settings)  # type: ignore[arg-type]


def test_low_priority_is_thinned_then_dropped_before_high_is_touched(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", policy(cost(100) * 20, degrade_window=4)) as spool:
        for i in range(10):
            spool.append("high", bytes(100), priority=HIGH)
            spool.append("low", i.to_bytes(2, "big") + bytes(98), priority=LOW)
        # Full. More high telemetry pushes low out, never the other way round.
        for _ in range(8):
            assert spool.append("high", bytes(100), priority=HIGH).stored
        stats = spool.stats()
        assert stats.by_priority["telemetry_high"].records == 18
        assert stats.by_priority["telemetry_high"].dropped == 0
        low = stats.by_priority["telemetry_low"]
        assert low.downsampled > 0  # thinning came first
        assert stats.bytes <= stats.max_bytes
        # Every other record of the oldest low data went; what is left is still in order
        # and the oldest of it is the most decimated.
        records = spool.lease(100, priorities=[LOW])
        kept = [int.from_bytes(r.payload[:2], "big") for r in records]
        assert kept == sorted(kept)
        assert len(kept) < 10
        assert [r.decimation for r in records] == sorted(
            (r.decimation for r in records), reverse=True
        )


def test_low_priority_cannot_push_out_more_important_records(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", policy(cost(100) * 5)) as spool:
        for _ in range(5):
            spool.append("high", bytes(100), priority=HIGH)
        assert spool.append("low", bytes(100), priority=LOW).refused == "over-cap"
        assert spool.stats().by_priority["telemetry_low"].refused == 1
        assert spool.stats().by_priority["telemetry_high"].records == 5


def test_control_is_dropped_oldest_first_and_only_after_telemetry(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", policy(cost(10) * 6)) as spool:
        spool.append("low", bytes(10), priority=LOW)
        for i in range(5):
            spool.append("state", bytes([i]) * 10, priority=CONTROL)
        for _ in range(3):
            assert spool.append("state", b"n" * 10, priority=CONTROL).stored
        stats = spool.stats().by_priority
        assert stats["telemetry_low"].records == 0
        assert stats["control"].dropped == 2
        payloads = [r.payload[:1] for r in spool.lease(10)]
        assert payloads == [b"\x02", b"\x03", b"\x04", b"n", b"n", b"n"]


def test_events_are_never_dropped_and_go_past_the_cap(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", policy(cost(10) * 4)) as spool:
        for _ in range(4):
            spool.append("low", bytes(10), priority=LOW)
        for i in range(10):
            assert spool.append("events", bytes([i]) * 10, priority=EVENTS).stored
        stats = spool.stats()
        assert stats.by_priority["events"].records == 10
        assert stats.by_priority["telemetry_low"].records == 0
        assert stats.events_over_cap_bytes == cost(10) * 6
        assert stats.degraded
        # With only events left, everything else is refused.
        assert spool.append("state", b"s", priority=CONTROL).refused == "over-cap"


def test_a_quota_degrades_its_own_priority_first(tmp_path: Path) -> None:
    quotas = {CONTROL: 1.0, HIGH: 1.0, LOW: 0.25}
    with Spool(tmp_path / "s.db", policy(cost(100) * 40, quotas=quotas)) as spool:
        for _ in range(10):
            spool.append("high", bytes(100), priority=HIGH)
        for _ in range(30):
            spool.append("low", bytes(100), priority=LOW)
        stats = spool.stats()
        assert stats.by_priority["telemetry_low"].bytes <= cost(100) * 10
        assert stats.by_priority["telemetry_high"].records == 10
        assert stats.bytes < stats.max_bytes


def test_too_large_records_are_refused(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", policy(1000)) as spool:
        assert spool.append("low", bytes(2000), priority=LOW).refused == "too-large"
        assert spool.append("event", bytes(2000), priority=EVENTS).stored
        assert spool.stats().by_priority["telemetry_low"].refused == 1


def test_ttl_expires_per_priority_with_an_injected_clock(tmp_path: Path) -> None:
    clock = BootClock()
    ttls = {LOW: 60.0, HIGH: 600.0}
    with Spool(
        tmp_path / "s.db",
        policy(10**6, ttls=ttls),
        now=clock.now,
        monotonic=clock.monotonic,
        age_clock=clock.ages(),
    ) as spool:
        spool.append("low", b"old-low", priority=LOW)
        spool.append("high", b"old-high", priority=HIGH)
        spool.append("events", b"old-event", priority=EVENTS)
        clock.advance(61)
        spool.append("low", b"new-low", priority=LOW)
        assert [r.payload for r in spool.lease(10)] == [b"old-event", b"old-high", b"new-low"]
        spool.release_all()
        clock.advance(600)
        spool.expire()
        assert [r.payload for r in spool.lease(10)] == [b"old-event"]
        stats = spool.stats().by_priority
        assert (stats["telemetry_low"].expired, stats["telemetry_high"].expired) == (2, 1)


def test_leased_records_are_neither_degraded_nor_expired(tmp_path: Path) -> None:
    clock = BootClock()
    with Spool(
        tmp_path / "s.db",
        policy(cost(10) * 3, ttls={LOW: 10.0}),
        now=clock.now,
        monotonic=clock.monotonic,
        age_clock=clock.ages(),
    ) as spool:
        spool.append("low", b"in-flight!", priority=LOW)
        (leased,) = spool.lease(1)
        for _ in range(5):
            spool.append("low", bytes(10), priority=LOW)
        clock.advance(11)
        spool.expire()
        assert spool.ack([leased.id]) == 1


def test_the_degrade_hook_halves_batches_before_any_is_dropped(tmp_path: Path) -> None:
    batches = [telemetry_batch(i, samples=200) for i in range(12)]
    budget = sum(cost(len(b)) for b in batches[:8])
    degrade = telemetry_streams().degrade
    with Spool(tmp_path / "s.db", policy(budget), degrade=degrade) as spool:
        for batch in batches:
            assert spool.append("chassis", batch, priority=LOW).stored
        stats = spool.stats()
        low = stats.by_priority["telemetry_low"]
        assert low.downsampled > 0
        assert low.dropped == 0
        assert stats.bytes <= budget
        decoded = [decode_batch(r.payload) for r in spool.lease(100)]
        assert [b.sequence for b in decoded] == list(range(12))  # coverage kept
        assert decoded[0].decimation >= 1
        assert decoded[-1].decimation == 0
        assert decoded[0].message_id == decode_batch(batches[0]).message_id


@pytest.mark.slow
@pytest.mark.parametrize("hook", [telemetry_streams().degrade, None], ids=["downsample", "thin"])
def test_ten_minutes_offline_at_an_accelerated_clock_stay_inside_the_cap(
    tmp_path: Path, hook: DegradeHook | None
) -> None:
    """One batch per second per telemetry class, state every 10 s, an event every 30 s."""
    clock = BootClock()
    cap = 400_000
    spool_policy = SpoolPolicy(
        max_bytes=cap,
        quotas={CONTROL: 0.1, HIGH: 0.9, LOW: 0.5},
        ttls={LOW: 480.0},
        degrade_window=8,
    )
    with Spool(
        tmp_path / "s.db",
        spool_policy,
        now=clock.now,
        monotonic=clock.monotonic,
        age_clock=clock.ages(),
        degrade=hook,
    ) as spool:
        first_low_drop_saw_downsampling = None
        for second in range(600):
            clock.advance(1.0)
            arrivals = [
                AppendRequest("chassis", telemetry_batch(second, 60, seed=1), HIGH),
                AppendRequest("cabin", telemetry_batch(second, 120, seed=2), LOW),
            ]
            if second % 10 == 0:
                arrivals.append(AppendRequest("state", b"reported-state" * 5, CONTROL))
            if second % 30 == 0:
                arrivals.append(AppendRequest("events", b"hard-brake", EVENTS))
            # One group commit per simulated second, as the async facade would do.
            results = spool.append_many(arrivals)
            assert all(r.stored for r in results)
            stats = spool.stats()
            assert stats.bytes <= cap, f"over the cap at t={second}s"
            low = stats.by_priority["telemetry_low"]
            if low.dropped and first_low_drop_saw_downsampling is None:
                first_low_drop_saw_downsampling = low.downsampled > 0
        stats = spool.stats().by_priority
        assert stats["events"].records == 20  # every event kept
        assert stats["control"].records == 60
        assert stats["telemetry_high"].appended == 600
        assert stats["telemetry_high"].records == 600  # low gave way, high did not
        assert stats["telemetry_low"].downsampled > 0
        assert first_low_drop_saw_downsampling in (None, True)  # downsample before drop
        low = spool.lease(2000, priorities=[LOW])
        assert low[0].decimation >= low[-1].decimation  # oldest degraded most
        assert clock.now() - low[0].created <= 480.0  # TTL held
