"""The spool's SQLite file: connection settings, schema, record checksums, health check."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

from edge_agent.spool.model import SpoolLocked

SCHEMA_VERSION = 2
# Versions this agent opens; older ones are brought up to date by ``connect``.
KNOWN_VERSIONS = (0, 1, SCHEMA_VERSION)
RECORD_COLUMNS = "id, stream, priority, message_id, created, decimation, size, crc, payload"
# A constant, no outside input: hence the S608 waiver.
_SELECT = f"SELECT {RECORD_COLUMNS} FROM records"  # noqa: S608
SELECT_RECORD = _SELECT + " WHERE id = ?"
SELECT_RECORDS_AFTER = _SELECT + " WHERE id > ? ORDER BY id LIMIT ?"
SELECT_PRIORITY_AFTER = _SELECT + " WHERE priority = ? AND id > ? ORDER BY id LIMIT ?"
_PLACEHOLDERS = ", ".join("?" * len(RECORD_COLUMNS.split(",")))
INSERT_RECORD = f"INSERT INTO records ({RECORD_COLUMNS}) VALUES ({_PLACEHOLDERS})"  # noqa: S608
# When and in which boot a record was written (edge_agent/spool/age.py); NULL: unknown.
AGE_COLUMNS = "boot_id, since_boot, wall_trusted"
_AGE_DEFINITIONS = "boot_id TEXT, since_boot REAL, wall_trusted INTEGER NOT NULL DEFAULT 0"
SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    priority INTEGER NOT NULL,
    message_id BLOB NOT NULL,
    created REAL NOT NULL,
    decimation INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL,
    crc INTEGER NOT NULL,
    payload BLOB NOT NULL,
    boot_id TEXT,
    since_boot REAL,
    wall_trusted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS records_by_priority ON records (priority, id);
CREATE INDEX IF NOT EXISTS records_by_boot_age ON records (priority, boot_id, since_boot);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER,
    stream TEXT,
    priority INTEGER,
    message_id BLOB,
    created REAL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL,
    payload BLOB
);
"""
DURABILITY = (
    "SQLite WAL, synchronous=FULL: every append transaction fsyncs the WAL before append "
    "returns; a group of appends shares one transaction and one fsync"
)


def record_crc(stream: str, priority: int, message_id: bytes, payload: bytes) -> int:
    """CRC32 over what identifies and carries a record, checked before it is handed out."""
    crc = zlib.crc32(f"{stream}\x00{priority}\x00".encode())
    return zlib.crc32(payload, zlib.crc32(message_id, crc))


def connect(path: Path | None, autocheckpoint_pages: int) -> sqlite3.Connection:
    """Open ``path`` for this process alone (exclusive lock), WAL, fsync on every commit.

    ``None`` opens a database in memory (the spool's fallback while the disk cannot be
    used). A file of schema version 1 is brought up to version 2 in the same transaction.
    """
    connection = sqlite3.connect(
        ":memory:" if path is None else path, isolation_level=None, timeout=0.0
    )
    try:
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint_pages)}")
        # Keep the WAL's disk blocks after a checkpoint (up to this size) so that a full
        # disk does not stop the next transaction from writing its frames.
        connection.execute(f"PRAGMA journal_size_limit={int(autocheckpoint_pages) * 2 * 4096}")
        connection.execute("BEGIN IMMEDIATE")  # takes the exclusive lock now
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == 1:
            for definition in _AGE_DEFINITIONS.split(", "):
                connection.execute(f"ALTER TABLE records ADD COLUMN {definition}")
            # Ages are no longer read off the wall clock: its index gives way to the boot one.
            connection.execute("DROP INDEX IF EXISTS records_by_age")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        if version != SCHEMA_VERSION:
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except sqlite3.OperationalError as error:
        connection.close()
        if "locked" in str(error):
            raise SpoolLocked(f"spool {path}: in use by another process") from None
        raise
    return connection


def health_problem(path: Path) -> str | None:
    """None when ``path`` is a sound SQLite spool, else a one-line reason (quick_check)."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=0.0)
    except sqlite3.Error as error:
        return f"cannot open: {error}"
    try:
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        rows = connection.execute("PRAGMA quick_check").fetchall()
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.OperationalError as error:
        if "locked" in str(error):
            raise SpoolLocked(f"spool {path}: in use by another process") from None
        return str(error)
    except sqlite3.DatabaseError as error:
        return str(error)
    finally:
        connection.close()
    problems = [row[0] for row in rows if row[0] != "ok"]
    if problems:
        return f"quick_check: {problems[0]}" + (
            f" (+{len(problems) - 1} more)" * (len(problems) > 1)
        )
    if version not in KNOWN_VERSIONS:
        return f"schema version {version}, this agent knows up to {SCHEMA_VERSION}"
    return None
