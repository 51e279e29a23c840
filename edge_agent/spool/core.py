"""The spool's file and its books: every change in one transaction that keeps them in step.

:class:`SpoolCore` opens the SQLite file (or the in-memory stand-in), loads the per-priority
ledger from it and keeps that ledger in step with every insert and delete, applies TTLs with
each transaction, and knows the byte cap now (the policy's, less damaged copies, less on a
full disk). The spool's operations (store.py) and the moving of records between spools
(transfer.py) are built on it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from edge_agent.logs import get_logger
from edge_agent.spool.age import AgeClock
from edge_agent.spool.database import AGE_COLUMNS, RECORD_COLUMNS
from edge_agent.spool.eviction import DegradeHook, Evictor, Ledger
from edge_agent.spool.leases import Leases
from edge_agent.spool.model import AppendResult, SpoolClosed, SpoolPolicy, SpoolPriority
from edge_agent.spool.opening import open_file, open_memory
from edge_agent.spool.reserve import DiskGuard, DiskReserve
from edge_agent.spool.salvage import SalvageReport

_CHUNK = 500
_log = get_logger("edge_agent.spool")
# A stored row with everything that travels with it when records move between spools.
ROW_COLUMNS = f"{RECORD_COLUMNS}, {AGE_COLUMNS}"
_INSERT_ROW = (
    "INSERT INTO records (stream, priority, message_id, created, decimation, size, crc, "
    "payload, boot_id, since_boot, wall_trusted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
Row = tuple[Any, ...]


class DiskFullRollback(Exception):
    """SQLite said SQLITE_FULL; the transaction was rolled back."""


def _is_disk_full(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


class SpoolCore:
    """The open spool file and its ledger; see the module doc and :class:`Spool`."""

    def __init__(
        self,
        path: Path | str,
        policy: SpoolPolicy | None = None,
        *,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        degrade: DegradeHook | None = None,
        age_clock: AgeClock | None = None,
        salvage_on_open: bool = True,
        in_memory: bool = False,
        first_id: int = 0,
    ) -> None:
        self.path = Path(path)
        self.policy = policy or SpoolPolicy()
        self.in_memory = in_memory
        self._now = now
        self._monotonic = monotonic
        self._age = age_clock or AgeClock()
        self._leases = Leases()
        self._ledger = Ledger()
        self._next_expiry = float("-inf")
        self._degraded_at = float("-inf")
        opened = (
            open_memory(self.policy, first_id)
            if in_memory
            else open_file(self.path, self.policy, now(), salvage_on_open)
        )
        self.salvage_reports: list[SalvageReport] = opened.salvage_reports
        self._damaged_files, self._damaged_bytes = opened.damaged_files, opened.damaged_bytes
        self._db = opened.connection
        self._load_ledger()
        self._evictor = Evictor(self._db, self.policy, lambda: self._ledger, self._leases, degrade)
        self._evictor.check_older_boots(self._age.stamp(self._now()))
        reserve = DiskReserve(
            self.path.with_name(self.path.name + ".reserve"),
            0 if in_memory else self.policy.reserve_bytes,
        )
        reserve.ensure()
        self._disk = DiskGuard(reserve, self.policy.record_overhead)

    def _load_ledger(self) -> None:
        for priority, records, payload_bytes in self._db.execute(
            "SELECT priority, count(*), coalesce(sum(size), 0) FROM records GROUP BY priority"
        ):
            figures = self._ledger[SpoolPriority(priority)]
            figures.records = records
            figures.bytes = payload_bytes + records * self.policy.record_overhead
        for priority in SpoolPriority:
            self._ledger[priority].quota_bytes = self.policy.quota_bytes(priority)
        self._ledger.quarantined = sum(report.quarantined for report in self.salvage_reports)

    def close(self) -> None:
        """Checkpoint and close the file; safe to call twice."""
        if self._db is not None:
            self._db.close()
            self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise SpoolClosed(f"spool {self.path} is closed")
        return self._db

    def _cap(self) -> int:
        """The byte cap now: the policy's, less damaged copies, less on a full disk."""
        cap = self.policy.max_bytes - self._damaged_bytes
        if self._disk.cap is None:
            return cap
        return min(cap, self._disk.cap)

    def _insert(self, priority: SpoolPriority, row: Row) -> int:
        """Insert ``row`` (``ROW_COLUMNS`` without the id) and account for it."""
        cursor = self._db.execute(_INSERT_ROW, row)
        figures = self._ledger[priority]
        figures.records += 1
        figures.bytes += self._evictor.cost(len(row[7]))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _transaction(self, work: Callable[[], list[AppendResult]]) -> list[AppendResult]:
        """Run ``work`` and the due expiry in one committed transaction, or undo all of it."""
        before = self._ledger.snapshot()
        self._evictor.degraded_recently = False
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if self._now() >= self._next_expiry:
                self._evictor.expire(self._age.stamp(self._now()))
                self._next_expiry = self._now() + self.policy.expiry_interval
            results = work()
            self._db.execute("COMMIT")
        except BaseException as error:  # whatever broke, the transaction must not stay open
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._ledger = before
            self._evictor.forget_progress()
            if isinstance(error, sqlite3.Error) and _is_disk_full(error):
                raise DiskFullRollback from error
            raise
        if self._evictor.degraded_recently:
            self._degraded_at = self._monotonic()
        return results

    def _check_disk(self) -> None:
        if self._disk.check():
            _log.info("spool disk space back", path=str(self.path))

    def _delete(self, record_ids: Sequence[int], *, acked: bool) -> None:
        """Delete ``record_ids`` (unknown ones are ignored) in the open transaction."""
        for start in range(0, len(record_ids), _CHUNK):
            chunk = list(record_ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            # Only "?" placeholders are interpolated (S608 waived).
            rows = self._db.execute(
                f"SELECT priority, size FROM records WHERE id IN ({marks})",  # noqa: S608
                chunk,
            ).fetchall()
            self._db.execute(f"DELETE FROM records WHERE id IN ({marks})", chunk)  # noqa: S608
            for priority, size in rows:
                figures = self._ledger[SpoolPriority(priority)]
                figures.records -= 1
                figures.bytes -= self._evictor.cost(size)
                if acked:
                    figures.acked += 1
