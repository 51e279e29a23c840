"""TTL expiry by age on a boot-safe clock: a stepped wall clock never ages a record.

Driven by a hand-moved clock (``spool_helpers.BootClock``): its monotonic reading doubles
as the boot clock, ``step_wall`` sets the wall clock alone (a time sync), ``reboot`` powers
the vehicle off and boots it again under a new boot id.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from spool_helpers import BootClock

from edge_agent.spool import AgeClock, Spool, SpoolPolicy, SpoolPriority
from edge_agent.spool.model import DAY

EVENTS = SpoolPriority.EVENTS
CONTROL = SpoolPriority.CONTROL
HIGH = SpoolPriority.TELEMETRY_HIGH
LOW = SpoolPriority.TELEMETRY_LOW
# The shipped TTLs: control and high telemetry 7 days, low telemetry 2 days.
LONGEST_TTL = 7 * DAY


def open_spool(path: Path, clock: BootClock) -> Spool:
    return Spool(
        path, SpoolPolicy(), now=clock.now, monotonic=clock.monotonic, age_clock=clock.ages()
    )


def fill(spool: Spool) -> None:
    for priority in (EVENTS, CONTROL, HIGH, LOW):
        assert spool.append(priority.name.lower(), b"x" * 100, priority=priority).stored


def expired(spool: Spool) -> dict[str, int]:
    return {name: p.expired for name, p in spool.stats().by_priority.items() if p.expired}


def test_a_forward_wall_step_beyond_the_longest_ttl_expires_nothing(tmp_path: Path) -> None:
    clock = BootClock(start=1_000_000_000.0)  # an RTC-less ECU booted in 2001
    with open_spool(tmp_path / "spool.db", clock) as spool:
        fill(spool)
        clock.advance(60)
        clock.step_wall(24 * 365 * DAY / 24)  # first time sync: a year forward
        clock.step_wall(LONGEST_TTL + DAY)  # and, for good measure, past every TTL again
        spool.expire()
        assert expired(spool) == {}
        assert spool.stats().records == 4
        # Ages still run on the boot clock: two days later low telemetry goes, a week later
        # the rest but the event.
        clock.advance(2 * DAY)
        spool.expire()
        assert expired(spool) == {"telemetry_low": 1}
        clock.advance(5 * DAY)
        spool.expire()
        assert expired(spool) == {"telemetry_low": 1, "telemetry_high": 1, "control": 1}
        assert [r.priority for r in spool.lease(10)] == [EVENTS]


def test_a_backward_wall_step_does_not_keep_records_past_their_ttl(tmp_path: Path) -> None:
    clock = BootClock()
    with open_spool(tmp_path / "spool.db", clock) as spool:
        fill(spool)
        clock.step_wall(-30 * DAY)
        clock.advance(2 * DAY + 1)
        spool.expire()
        assert expired(spool) == {"telemetry_low": 1}


def test_across_a_reboot_the_wall_clock_counts_only_if_trusted_at_both_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    clock = BootClock()
    clock.trusted = True
    with open_spool(path, clock) as spool:
        spool.append("trusted-then", b"a", priority=LOW)
        clock.trusted = False
        spool.append("untrusted-then", b"b", priority=LOW)
    clock.reboot(off_for=3 * DAY)  # low telemetry's TTL is 2 days
    clock.trusted = False
    with open_spool(path, clock) as spool:
        spool.expire()
        assert expired(spool) == {}  # the wall clock is not trusted now: off time unknown
    clock.trusted = True  # the time sync arrives in this boot
    with open_spool(path, clock) as spool:
        spool.expire()
        # Trusted at both ends: three days old by the wall clock. The other one's age is
        # unknown, so it counts from this boot's start (ten seconds).
        assert [r.stream for r in spool.lease(10)] == ["untrusted-then"]
        assert expired(spool) == {"telemetry_low": 1}
        spool.release_all()  # leased records never expire
        clock.advance(2 * DAY)
        spool.expire()
        assert spool.lease(10) == []


def test_a_reboot_is_noticed_without_a_boot_id(tmp_path: Path) -> None:
    """Under ``ProcSubset=pid`` the boot id cannot be read; the boot clock going back tells."""
    path = tmp_path / "spool.db"
    clock = BootClock()
    clock.mono = 10 * DAY  # this boot has been up for ten days
    ages = AgeClock("", clock.monotonic)
    with Spool(path, now=clock.now, monotonic=clock.monotonic, age_clock=ages) as spool:
        spool.append("before", b"a", priority=LOW)
    clock.reboot(off_for=DAY)
    with Spool(path, now=clock.now, monotonic=clock.monotonic, age_clock=ages) as spool:
        spool.expire()
        assert expired(spool) == {}  # counted from this boot's start, not "minus ten days"
        clock.advance(2 * DAY)
        spool.expire()
        assert expired(spool) == {"telemetry_low": 1}


V1_SCHEMA = """
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, priority INTEGER NOT NULL,
    message_id BLOB NOT NULL, created REAL NOT NULL, decimation INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL, crc INTEGER NOT NULL, payload BLOB NOT NULL
);
CREATE INDEX records_by_priority ON records (priority, id);
CREATE INDEX records_by_age ON records (priority, created);
CREATE TABLE quarantine (
    id INTEGER, stream TEXT, priority INTEGER, message_id BLOB, created REAL,
    reason TEXT NOT NULL, quarantined_at REAL NOT NULL, payload BLOB
);
PRAGMA user_version = 1;
"""


def test_a_version_1_file_is_brought_up_to_date_and_its_records_age_from_this_boot(
    tmp_path: Path,
) -> None:
    from edge_agent.spool.database import record_crc

    path = tmp_path / "spool.db"
    with sqlite3.connect(path) as old:
        old.executescript(V1_SCHEMA)
        old.execute(
            "INSERT INTO records (stream, priority, message_id, created, size, crc, payload) "
            "VALUES ('old', 3, X'01', 0.0, 3, ?, X'414243')",
            (record_crc("old", 3, b"\x01", b"ABC"),),
        )
    old.close()
    clock = BootClock()
    with open_spool(path, clock) as spool:
        assert spool.salvage_reports == []
        spool.expire()  # written in 1970 by the wall clock, but of unknown age: kept
        (record,) = spool.lease(10)
        assert (record.stream, record.payload) == ("old", b"ABC")
        spool.release_all()
        clock.advance(2 * DAY)
        spool.expire()
        assert spool.lease(10) == []
    with sqlite3.connect(path) as reopened:
        assert reopened.execute("PRAGMA user_version").fetchone()[0] == 2
        indexes = {row[1] for row in reopened.execute("PRAGMA index_list(records)")}
    reopened.close()
    assert indexes == {"records_by_priority", "records_by_boot_age"}
