"""Rescue of a damaged spool file: copy out every readable record, keep the wreck aside.

Used when ``PRAGMA quick_check`` fails on open (a flipped bit in a b-tree page, a truncated
file). Readable rows keep their ids (so their order); rows whose checksum no longer matches
go to the quarantine table; the damaged file is renamed ``<name>.damaged-<n>`` for forensics.

Crash safety: the rescued copy is built in ``<name>.salvage`` and committed before the
damaged file is moved away; ``finish_interrupted_salvage`` completes a rename that a crash
interrupted, and a crash before that simply salvages again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.spool.database import (
    INSERT_RECORD,
    SELECT_RECORD,
    SELECT_RECORDS_AFTER,
    connect,
    record_crc,
)

PROBE_WINDOW = 4096
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SalvageReport:
    """What a salvage kept, set aside and lost."""

    reason: str
    damaged_file: Path
    recovered: int
    quarantined: int
    unreadable_ids: int


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def fsync_directory(directory: Path) -> None:
    """Make renames and creations in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def finish_interrupted_salvage(path: Path) -> bool:
    """If a crash hit between moving the wreck away and moving the copy in, finish it."""
    fresh = path.with_name(path.name + ".salvage")
    if path.exists() or not fresh.exists():
        return False
    os.replace(fresh, path)
    fsync_directory(path.parent)
    return True


def salvage(path: Path, reason: str, now: float, autocheckpoint_pages: int) -> SalvageReport:
    """Rebuild ``path`` from its readable records; return what happened."""
    fresh = path.with_name(path.name + ".salvage")
    for leftover in [fresh, *_sidecars(fresh)]:
        leftover.unlink(missing_ok=True)
    target = connect(fresh, autocheckpoint_pages)
    recovered = quarantined = unreadable = 0
    try:
        target.execute("BEGIN IMMEDIATE")
        try:
            source = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
        except sqlite3.Error:
            source = None
        if source is not None:
            try:
                # writable_schema lets SQLite read a file shorter than its header says
                # (a truncated tail) instead of refusing all of it; query_only keeps the
                # salvage from writing to the wreck.
                source.execute("PRAGMA writable_schema=1")
                source.execute("PRAGMA query_only=1")
                rows = _Rows(source)
                for row in rows:
                    if _intact(row):
                        target.execute(INSERT_RECORD, row)
                        recovered += 1
                    else:
                        _quarantine_row(target, row, "checksum mismatch (salvage)", now)
                        quarantined += 1
                unreadable = rows.unreadable
                quarantined += _copy_old_quarantine(source, target)
            except sqlite3.Error as error:  # the file is beyond reading (e.g. header gone)
                _log.warning("spool salvage stopped early: %s", error)
            finally:
                source.close()
        target.execute("COMMIT")
    finally:
        target.close()
    damaged = _free_name(path)
    os.replace(path, damaged)
    for sidecar, moved in zip(_sidecars(path), _sidecars(damaged), strict=True):
        if sidecar.exists():
            os.replace(sidecar, moved)
    os.replace(fresh, path)
    fsync_directory(path.parent)
    return SalvageReport(reason, damaged, recovered, quarantined, unreadable)


def _free_name(path: Path) -> Path:
    number = 1
    while path.with_name(f"{path.name}.damaged-{number}").exists():
        number += 1
    return path.with_name(f"{path.name}.damaged-{number}")


def _intact(row: tuple[Any, ...]) -> bool:
    _id, stream, priority, message_id, created, decimation, size, crc, payload = row
    if not (
        isinstance(stream, str)
        and isinstance(priority, int)
        and isinstance(message_id, bytes)
        and isinstance(payload, bytes)
        and isinstance(created, float | int)
        and isinstance(decimation, int)
        and size == len(payload)
    ):
        return False
    return bool(crc == record_crc(stream, priority, message_id, payload))


def _quarantine_row(
    connection: sqlite3.Connection, row: tuple[Any, ...], reason: str, now: float
) -> None:
    record_id, stream, priority, message_id, created, _decimation, _size, _crc, payload = row
    connection.execute(
        "INSERT INTO quarantine (id, stream, priority, message_id, created, reason, "
        "quarantined_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (record_id, stream, priority, message_id, created, reason, now, payload),
    )


def _copy_old_quarantine(source: sqlite3.Connection, target: sqlite3.Connection) -> int:
    try:
        rows = source.execute(
            "SELECT id, stream, priority, message_id, created, reason, quarantined_at, payload "
            "FROM quarantine"
        ).fetchall()
    except sqlite3.DatabaseError:
        return 0
    target.executemany("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


class _Rows:
    """Every readable record row in id order, stepping id by id around damaged pages."""

    def __init__(self, source: sqlite3.Connection) -> None:
        self._source = source
        self.unreadable = 0

    def _highest_id(self) -> int:
        highest = 0
        for query in (
            "SELECT seq FROM sqlite_sequence WHERE name = 'records'",
            "SELECT max(id) FROM records",
        ):
            try:
                row = self._source.execute(query).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row and isinstance(row[0], int):
                highest = max(highest, row[0])
        return highest

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        # AUTOINCREMENT: no id is above sqlite_sequence's. Unknown (that page is damaged too):
        # keep probing while windows of PROBE_WINDOW ids still turn up records.
        highest = self._highest_id() or None
        last = 0
        while highest is None or last < highest:
            try:
                rows = self._source.execute(SELECT_RECORDS_AFTER, (last, 256)).fetchall()
            except sqlite3.DatabaseError:
                rows = None
            if rows:
                yield from rows
                last = rows[-1][0]
                continue
            if rows is not None:
                return  # a clean end of the table
            stop = last + PROBE_WINDOW if highest is None else min(last + PROBE_WINDOW, highest)
            found = False
            for candidate in range(last + 1, stop + 1):
                try:
                    row = self._source.execute(SELECT_RECORD, (candidate,)).fetchone()
                except sqlite3.DatabaseError:
                    self.unreadable += 1
                    continue
                if row is not None:
                    found = True
                    yield row
            last = stop
            if highest is None and not found:
                return
