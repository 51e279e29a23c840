"""A damaged spool file: detected, the bad part quarantined, the rest delivered."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from edge_agent.spool import AppendRequest, Spool, SpoolPriority


def fill(path: Path, count: int, size: int = 1000) -> list[bytes]:
    payloads = [f"RECORD-{i:05d}-".encode() + bytes([65 + i % 26]) * size for i in range(count)]
    with Spool(path) as spool:
        requests = [
            AppendRequest("chassis", payload, SpoolPriority.TELEMETRY_LOW) for payload in payloads
        ]
        for start in range(0, count, 7):  # several transactions, several pages each
            assert all(r.stored for r in spool.append_many(requests[start : start + 7]))
    assert not Path(f"{path}-wal").exists()  # closed cleanly: everything is in the main file
    return payloads


def test_a_flipped_byte_in_a_payload_is_quarantined_and_the_rest_delivered(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    payloads = fill(path, 50)
    data = bytearray(path.read_bytes())
    where = data.find(b"RECORD-00017-")
    assert where > 0
    data[where + 200] ^= 0x01
    path.write_bytes(bytes(data))
    with Spool(path) as spool:
        assert spool.salvage_reports == []  # structure intact: only the checksum can tell
        delivered = [r.payload for r in spool.lease(1000)]
        assert delivered == payloads[:17] + payloads[18:]
        assert spool.stats().quarantined == 1
    with sqlite3.connect(path) as connection:
        reason, payload = connection.execute("SELECT reason, payload FROM quarantine").fetchone()
    assert reason == "checksum mismatch"
    assert payload[:13] == b"RECORD-00017-"


def test_a_truncated_file_is_salvaged_and_the_readable_records_delivered(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    payloads = fill(path, 300)
    size = path.stat().st_size
    os.truncate(path, size * 2 // 3)
    with Spool(path) as spool:
        (report,) = spool.salvage_reports
        assert report.recovered > 100
        delivered = [r.payload for r in spool.lease(1000)]
        # What survived is a prefix-ordered subset of what was written, byte for byte.
        assert delivered
        positions = [payloads.index(p) for p in delivered]
        assert positions == sorted(positions)
        assert len(delivered) == report.recovered
        assert report.damaged_file.exists()
        assert spool.stats().salvaged_files == 1
        # And the spool works normally afterwards.
        assert spool.append("chassis", b"after", priority=SpoolPriority.TELEMETRY_LOW).stored
    with Spool(path) as spool:
        assert spool.salvage_reports == []


def test_a_damaged_btree_page_is_salvaged_around(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    payloads = fill(path, 300)
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    # Wreck the header of a leaf page in the middle of the table.
    middle = data.find(b"RECORD-00150-")
    page_start = middle - middle % page_size
    data[page_start : page_start + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    with Spool(path) as spool:
        (report,) = spool.salvage_reports
        assert "quick_check" in report.reason or "malformed" in report.reason
        delivered = [r.payload for r in spool.lease(1000)]
        assert payloads[0] in delivered
        assert payloads[-1] in delivered
        assert 250 <= len(delivered) < 300
        positions = [payloads.index(p) for p in delivered]
        assert positions == sorted(positions)


def test_a_file_that_is_not_a_database_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    path.write_bytes(b"this is not an SQLite file" * 100)
    with Spool(path) as spool:
        (report,) = spool.salvage_reports
        assert report.recovered == 0
        assert report.damaged_file.read_bytes().startswith(b"this is not")
        assert spool.append("events", b"e", priority=SpoolPriority.EVENTS).stored


def test_an_interrupted_salvage_is_completed_on_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    payloads = fill(path, 10)
    # As if the process died after moving the wreck away, before moving the copy in.
    os.replace(path, tmp_path / "spool.db.salvage")
    with Spool(path) as spool:
        assert [r.payload for r in spool.lease(100)] == payloads
