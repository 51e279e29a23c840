"""Rescue of a damaged spool file: copy out every readable record, keep the wreck aside.

Used when ``PRAGMA quick_check`` fails on open (a flipped bit in a b-tree page, a truncated
file). Readable rows keep their ids (so their order); rows whose checksum no longer matches
go to the quarantine table; the damaged file is renamed ``<name>.damaged-<n>`` for forensics.

Crash safety: the rescued copy is built in ``<name>.salvage`` and committed before the
damaged file is moved away; ``finish_interrupted_salvage`` completes a rename that a crash
interrupted, and a crash before that simply salvages again. A salvage that fails (a full
disk) removes its partial copy and leaves the damaged file where it was.

Damaged copies are numbered in the order they were made and bounded
(:func:`prune_damaged_copies`): at most ``keep`` of them, the oldest removed first, and
never more than half the spool's byte cap, against which they count.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
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
    health_problem,
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


def salvage_if_damaged(
    path: Path, now: float, autocheckpoint_pages: int, keep_copies: int, max_bytes: int
) -> SalvageReport | None:
    """Salvage ``path`` if it fails its health check; None when it is sound (or absent).

    Older damaged copies are pruned first so that, with the new one, at most
    ``keep_copies`` remain. Raises what a salvage that cannot finish raises (a full disk:
    ``sqlite3.OperationalError`` or ``OSError``); the damaged file then stays in place.
    """
    finish_interrupted_salvage(path)
    if not path.exists():
        return None
    problem = health_problem(path)
    if problem is None:
        return None
    prune_damaged_copies(path, max(keep_copies - 1, 0), max_bytes)
    report = salvage(path, problem, now, autocheckpoint_pages)
    prune_damaged_copies(path, keep_copies, max_bytes)
    return report


def salvage(path: Path, reason: str, now: float, autocheckpoint_pages: int) -> SalvageReport:
    """Rebuild ``path`` from its readable records; return what happened."""
    fresh = path.with_name(path.name + ".salvage")
    _remove(fresh)
    try:
        recovered, quarantined, unreadable = _copy_readable(fresh, path, now, autocheckpoint_pages)
    except BaseException:
        # Nothing has been renamed yet: drop the partial copy (a full disk gets its space
        # back) and leave the damaged file where it is, to be salvaged again later.
        _remove(fresh)
        raise
    damaged = _free_name(path)
    os.replace(path, damaged)
    for sidecar, moved in zip(_sidecars(path), _sidecars(damaged), strict=True):
        if sidecar.exists():
            os.replace(sidecar, moved)
    os.replace(fresh, path)
    fsync_directory(path.parent)
    return SalvageReport(reason, damaged, recovered, quarantined, unreadable)


def _remove(database: Path) -> None:
    for leftover in [database, *_sidecars(database)]:
        leftover.unlink(missing_ok=True)


class _CopyFailed(Exception):
    """Writing the rescued copy failed (e.g. a full disk): the salvage cannot go on."""


def _copy_readable(
    fresh: Path, path: Path, now: float, autocheckpoint_pages: int
) -> tuple[int, int, int]:
    """Copy what can be read of ``path`` into ``fresh``: (recovered, quarantined, unreadable)."""
    target = connect(fresh, autocheckpoint_pages)
    recovered = quarantined = unreadable = 0

    def write(statement: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            target.executemany(statement, rows)
        except sqlite3.Error as error:
            raise _CopyFailed from error

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
                        write(INSERT_RECORD, [row])
                        recovered += 1
                    else:
                        write(_INSERT_QUARANTINED, [_quarantined(row, now)])
                        quarantined += 1
                unreadable = rows.unreadable
                old = _old_quarantine(source)
                write(_INSERT_QUARANTINE_ROW, old)
                quarantined += len(old)
            except sqlite3.Error as error:  # the file is beyond reading (e.g. header gone)
                _log.warning("spool salvage stopped early: %s", error)
            finally:
                source.close()
        target.execute("COMMIT")
    except _CopyFailed as failure:
        raise failure.__cause__ or failure from None
    finally:
        target.close()
    return recovered, quarantined, unreadable


def _free_name(path: Path) -> Path:
    # One past the highest number in use, so numbers tell the order copies were made in.
    numbers = [number for number, _ in damaged_copies(path)]
    return path.with_name(f"{path.name}.damaged-{max(numbers, default=0) + 1}")


@dataclass(frozen=True, slots=True)
class DamagedCopy:
    """A damaged spool file set aside by salvage, with its sidecar files."""

    files: tuple[Path, ...]

    @property
    def size(self) -> int:
        """Bytes on disk of the copy and its sidecars."""
        total = 0
        for file in self.files:
            with contextlib.suppress(FileNotFoundError):
                total += file.stat().st_size
        return total


def damaged_copies(path: Path) -> list[tuple[int, DamagedCopy]]:
    """The damaged copies of ``path`` by number, oldest first."""
    pattern = re.compile(re.escape(path.name) + r"\.damaged-(\d+)$")
    found: list[tuple[int, DamagedCopy]] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in path.parent.iterdir():
            match = pattern.match(entry.name)
            if match:
                found.append((int(match.group(1)), DamagedCopy((entry, *_sidecars(entry)))))
    return sorted(found, key=lambda item: item[0])


def prune_damaged_copies(path: Path, keep: int, max_bytes: int) -> tuple[int, int]:
    """Delete the oldest damaged copies of ``path`` beyond ``keep`` or half of ``max_bytes``.

    Returns the copies and bytes left. A copy that cannot be deleted is counted as left.
    """
    copies = [copy for _, copy in damaged_copies(path)]
    sizes = [copy.size for copy in copies]
    while copies and (len(copies) > keep or sum(sizes) > max_bytes // 2):
        oldest = copies[0]
        try:
            for file in oldest.files:
                file.unlink(missing_ok=True)
        except OSError as error:
            _log.warning("could not delete damaged spool copy %s: %s", oldest.files[0], error)
            break
        _log.info("deleted damaged spool copy %s (%d bytes)", oldest.files[0], sizes[0])
        copies.pop(0)
        sizes.pop(0)
    return len(copies), sum(sizes)


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


_INSERT_QUARANTINED = (
    "INSERT INTO quarantine (id, stream, priority, message_id, created, reason, "
    "quarantined_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_QUARANTINE_ROW = "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def _quarantined(row: tuple[Any, ...], now: float) -> tuple[Any, ...]:
    record_id, stream, priority, message_id, created, _decimation, _size, _crc, payload = row
    reason = "checksum mismatch (salvage)"
    return (record_id, stream, priority, message_id, created, reason, now, payload)


def _old_quarantine(source: sqlite3.Connection) -> list[tuple[Any, ...]]:
    try:
        rows: list[tuple[Any, ...]] = source.execute(
            "SELECT id, stream, priority, message_id, created, reason, quarantined_at, payload "
            "FROM quarantine"
        ).fetchall()
    except sqlite3.DatabaseError:
        return []
    return rows


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
