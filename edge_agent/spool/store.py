"""The spool's synchronous core: durable append, ordered lease, ack, bounds, disk-full care.

Not thread-safe: one thread owns a :class:`Spool` (``AsyncSpool`` gives it a dedicated
worker thread; tests and tools may use it directly). Guarantees are in docs/spool.md.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from edge_agent.logs import get_logger
from edge_agent.spool.database import (
    DURABILITY,
    SELECT_PRIORITY_AFTER,
    connect,
    health_problem,
    record_crc,
)
from edge_agent.spool.eviction import Degrade, Evictor, Ledger
from edge_agent.spool.leases import Leases
from edge_agent.spool.model import (
    AppendRequest,
    AppendResult,
    SpoolClosed,
    SpoolDiskFull,
    SpoolPolicy,
    SpoolPriority,
    SpoolRecord,
    SpoolStats,
)
from edge_agent.spool.reserve import DiskGuard, DiskReserve
from edge_agent.spool.salvage import SalvageReport, finish_interrupted_salvage, salvage

DEGRADED_HOLD_S = 60.0
_CHUNK = 500
_log = get_logger("edge_agent.spool")


class _DiskFull(Exception):
    """SQLite said SQLITE_FULL; the transaction was rolled back."""


def _is_disk_full(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


class Spool:
    """A crash-safe, bounded store of records waiting for the uplink's PUBACK.

    ``append`` returns only after the record is committed with an fsync (that return is the
    acknowledgement to the producer). ``lease`` hands records out, most important priority
    first and in append order within a priority, without removing them; ``ack`` removes
    them; ``release`` hands them back. ``now`` is the wall clock used for TTLs,
    ``monotonic`` times leases; ``degrade`` shrinks a telemetry payload (e.g.
    ``edge_agent.batch.downsample_encoded``) before whole records are thinned out.
    """

    def __init__(
        self,
        path: Path | str,
        policy: SpoolPolicy | None = None,
        *,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        degrade: Degrade | None = None,
    ) -> None:
        self.path = Path(path)
        self.policy = policy or SpoolPolicy()
        self._now = now
        self._monotonic = monotonic
        self.salvage_reports: list[SalvageReport] = []
        self._leases = Leases()
        self._ledger = Ledger()
        self._next_expiry = float("-inf")
        self._degraded_at = float("-inf")
        self._db = self._open()
        self._evictor = Evictor(self._db, self.policy, lambda: self._ledger, self._leases, degrade)
        reserve = DiskReserve(
            self.path.with_name(self.path.name + ".reserve"), self.policy.reserve_bytes
        )
        reserve.ensure()
        self._disk = DiskGuard(reserve, self.policy.record_overhead)

    # -- opening ---------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        finish_interrupted_salvage(self.path)
        if self.path.exists():
            problem = health_problem(self.path)
            if problem is not None:
                report = salvage(
                    self.path, problem, self._now(), self.policy.wal_autocheckpoint_pages
                )
                self.salvage_reports.append(report)
                self._ledger.quarantined += report.quarantined
                _log.warning(
                    "spool damaged: salvaged readable records, kept the damaged file aside",
                    reason=problem,
                    damaged_file=str(report.damaged_file),
                    recovered=report.recovered,
                    quarantined=report.quarantined,
                    unreadable_ids=report.unreadable_ids,
                )
        connection = connect(self.path, self.policy.wal_autocheckpoint_pages)
        for priority, records, payload_bytes in connection.execute(
            "SELECT priority, count(*), coalesce(sum(size), 0) FROM records GROUP BY priority"
        ):
            figures = self._ledger[SpoolPriority(priority)]
            figures.records = records
            figures.bytes = payload_bytes + records * self.policy.record_overhead
        for priority in SpoolPriority:
            self._ledger[priority].quota_bytes = self.policy.quota_bytes(priority)
        return connection

    def close(self) -> None:
        """Checkpoint and close the file; safe to call twice."""
        if self._db is not None:
            self._db.close()
            self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise SpoolClosed(f"spool {self.path} is closed")
        return self._db

    # -- appending -------------------------------------------------------------------------

    def append(
        self,
        stream: str,
        payload: bytes,
        *,
        priority: SpoolPriority = SpoolPriority.TELEMETRY_LOW,
        message_id: bytes | None = None,
    ) -> AppendResult:
        """Store one record durably (or refuse it softly; see ``AppendResult``)."""
        return self.append_many([AppendRequest(stream, payload, priority, message_id)])[0]

    def append_many(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        """Store several records in one transaction and one fsync (group commit).

        Every result is final when this returns. On a full disk, lower priorities degrade
        to fit in the space already held; what still does not fit is refused, except
        events, for which the disk reserve is given up. Raises SpoolDiskFull only if even
        that fails for an event.
        """
        self._connection()
        for request in requests:
            if not isinstance(request.payload, bytes) or not request.stream:
                raise TypeError("a record needs a non-empty stream and bytes as payload")
        ready = [
            request
            if request.message_id
            else AppendRequest(
                request.stream, request.payload, request.priority, uuid.uuid4().bytes
            )
            for request in requests
        ]
        self._check_disk()
        try:
            return self._write(ready)
        except _DiskFull:
            if self._disk.filled_up(self._ledger.total_bytes):
                _log.warning(
                    "spool disk full: lower priorities degrade or are refused, "
                    "events use the reserve",
                    path=str(self.path),
                )
        try:
            return self._write(ready)  # once more, with the cap shrunk to what is held
        except _DiskFull:
            pass
        results = {
            index: self._refuse(request, "disk-full")
            for index, request in enumerate(ready)
            if request.priority is not SpoolPriority.EVENTS
        }
        events = [(i, r) for i, r in enumerate(ready) if r.priority is SpoolPriority.EVENTS]
        if events:
            self._disk.reserve.release()
            try:
                stored = self._write([request for _, request in events])
            except _DiskFull:
                raise SpoolDiskFull(
                    f"spool {self.path}: disk full even after releasing the reserve; "
                    "keep the event and retry"
                ) from None
            results.update(zip((index for index, _ in events), stored, strict=True))
        return [results[index] for index in range(len(ready))]

    def _refuse(self, request: AppendRequest, reason: str) -> AppendResult:
        self._ledger[request.priority].refused += 1
        assert request.message_id is not None
        return AppendResult(request.message_id, None, reason)

    def _cap(self) -> int:
        if self._disk.cap is None:
            return self.policy.max_bytes
        return min(self.policy.max_bytes, self._disk.cap)

    def _write(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        def insert() -> list[AppendResult]:
            results = []
            cap = self._cap()
            for request in requests:
                assert request.message_id is not None
                reason = self._evictor.make_room(request.priority, len(request.payload), cap)
                if reason:
                    results.append(self._refuse(request, reason))
                    continue
                priority = int(request.priority)
                cursor = self._db.execute(
                    "INSERT INTO records (stream, priority, message_id, created, decimation, "
                    "size, crc, payload) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                    (
                        request.stream,
                        priority,
                        request.message_id,
                        self._now(),
                        len(request.payload),
                        record_crc(request.stream, priority, request.message_id, request.payload),
                        request.payload,
                    ),
                )
                figures = self._ledger[request.priority]
                figures.records += 1
                figures.bytes += self._evictor.cost(len(request.payload))
                figures.appended += 1
                results.append(AppendResult(request.message_id, cursor.lastrowid))
            return results

        return self._transaction(insert)

    def _transaction(self, work: Callable[[], list[AppendResult]]) -> list[AppendResult]:
        """Run ``work`` and the due expiry in one committed transaction, or undo all of it."""
        before = self._ledger.snapshot()
        self._evictor.degraded_recently = False
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if self._now() >= self._next_expiry:
                self._evictor.expire(self._now())
                self._next_expiry = self._now() + self.policy.expiry_interval
            results = work()
            self._db.execute("COMMIT")
        except BaseException as error:  # whatever broke, the transaction must not stay open
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._ledger = before
            self._evictor.forget_progress()
            if isinstance(error, sqlite3.Error) and _is_disk_full(error):
                raise _DiskFull from error
            raise
        if self._evictor.degraded_recently:
            self._degraded_at = self._monotonic()
        return results

    def _check_disk(self) -> None:
        if self._disk.check():
            _log.info("spool disk space back", path=str(self.path))

    # -- handing out -----------------------------------------------------------------------

    def lease(
        self,
        limit: int = 100,
        *,
        max_bytes: int | None = None,
        priorities: Iterable[SpoolPriority] | None = None,
    ) -> list[SpoolRecord]:
        """Hand out up to ``limit`` records not already leased, without removing them.

        Most important priority first; within a priority in append order (so in order per
        stream). ``max_bytes`` bounds the payload total (at least one record is returned).
        A record whose checksum fails is quarantined instead of handed out. Leases older
        than the policy's ``lease_timeout`` are released first.
        """
        db = self._connection()
        self._release_stale_leases()
        if self._now() >= self._next_expiry:
            self._transaction(list)
        records: list[SpoolRecord] = []
        payload_bytes = 0
        for priority in sorted(set(priorities or SpoolPriority)):
            while len(records) < limit:
                rows = db.execute(
                    SELECT_PRIORITY_AFTER,
                    (int(priority), self._leases.cursor[priority], limit - len(records) + 16),
                ).fetchall()
                if not rows:
                    break
                for row in rows:
                    record_id, stream, _, message_id, created, decimation, size, crc, payload = row
                    if record_id in self._leases:
                        self._leases.cursor[priority] = record_id
                        continue
                    if crc != record_crc(stream, int(priority), message_id, payload):
                        self._quarantine(record_id, priority, size, "checksum mismatch")
                        self._leases.cursor[priority] = record_id
                        continue
                    if max_bytes is not None and records and payload_bytes + size > max_bytes:
                        return records
                    self._leases.take(record_id, priority, self._monotonic())
                    payload_bytes += size
                    records.append(
                        SpoolRecord(
                            record_id, stream, priority, message_id, payload, created, decimation
                        )
                    )
                    if len(records) == limit:
                        break
        return records

    def _quarantine(self, record_id: int, priority: SpoolPriority, size: int, reason: str) -> None:
        _log.warning("spool record quarantined", record=record_id, reason=reason)

        def move() -> list[AppendResult]:
            self._db.execute(
                "INSERT INTO quarantine (id, stream, priority, message_id, created, reason, "
                "quarantined_at, payload) SELECT id, stream, priority, message_id, created, ?, "
                "?, payload FROM records WHERE id = ?",
                (reason, self._now(), record_id),
            )
            self._db.execute("DELETE FROM records WHERE id = ?", (record_id,))
            self._ledger[priority].records -= 1
            self._ledger[priority].bytes -= self._evictor.cost(size)
            self._ledger.quarantined += 1
            return []

        self._transaction(move)

    def ack(self, record_ids: Iterable[int]) -> int:
        """Remove records the uplink has delivered (after PUBACK); return how many went.

        Unknown ids (already acked) are ignored. On a full disk the reserve is given up to
        let the deletion through, since it frees space.
        """
        db = self._connection()
        wanted = list(dict.fromkeys(record_ids))
        if not wanted:
            return 0

        def delete() -> list[AppendResult]:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                # Only "?" placeholders are interpolated (S608 waived).
                rows = db.execute(
                    f"SELECT id, priority, size FROM records WHERE id IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
                db.execute(f"DELETE FROM records WHERE id IN ({marks})", chunk)  # noqa: S608
                for _, priority, size in rows:
                    figures = self._ledger[SpoolPriority(priority)]
                    figures.records -= 1
                    figures.bytes -= self._evictor.cost(size)
                    figures.acked += 1
            return []

        acked_before = sum(f.acked for f in self._ledger.by_priority.values())
        try:
            self._transaction(delete)
        except _DiskFull:
            self._disk.reserve.release()
            try:
                self._transaction(delete)
            except _DiskFull:
                raise SpoolDiskFull(f"spool {self.path}: disk full, cannot record acks") from None
        self._leases.forget(wanted)
        return sum(f.acked for f in self._ledger.by_priority.values()) - acked_before

    def release(self, record_ids: Iterable[int]) -> None:
        """Hand leased records back (publish failed): they go out again before newer ones."""
        self._leases.release(record_ids)

    def release_all(self) -> None:
        """Hand back every lease (the link went down)."""
        self._leases.release(self._leases)

    def _release_stale_leases(self) -> None:
        self._leases.release(self._leases.stale(self._monotonic() - self.policy.lease_timeout))

    def expire(self) -> None:
        """Apply TTLs now (appends and leases also do, at most once per expiry interval)."""
        self._connection()
        self._next_expiry = float("-inf")
        self._transaction(list)

    # -- reporting -------------------------------------------------------------------------

    def stats(self) -> SpoolStats:
        """Live figures and counters since open (see ``SpoolStats``)."""
        self._check_disk()
        file_bytes = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                file_bytes += os.stat(self.path.with_name(self.path.name + suffix)).st_size
        total = self._ledger.total_bytes
        return SpoolStats(
            max_bytes=self.policy.max_bytes,
            bytes=total,
            records=self._ledger.total_records,
            leased=len(self._leases),
            file_bytes=file_bytes,
            disk_full=self._disk.full,
            reserve_present=self._disk.reserve.present,
            degraded=self._disk.full
            or total > self.policy.max_bytes
            or self._monotonic() - self._degraded_at < DEGRADED_HOLD_S,
            events_over_cap_bytes=max(0, total - self.policy.max_bytes),
            quarantined=self._ledger.quarantined,
            salvaged_files=len(self.salvage_reports),
            durability=DURABILITY,
            by_priority={
                priority.name.lower(): copy.copy(self._ledger[priority])
                for priority in SpoolPriority
            },
        )
