"""The spool's synchronous core: durable append, ordered lease, ack, bounds, disk-full care.

Not thread-safe: one thread owns a :class:`Spool` (``AsyncSpool`` gives it a dedicated
worker thread; tests and tools may use it directly). Guarantees are in docs/spool.md. The
file and its books (ledger, cap, transactions) are in core.py; moving records between
spools is in transfer.py.
"""

from __future__ import annotations

import contextlib
import copy
import os
import uuid
from collections.abc import Iterable, Sequence

from edge_agent.logs import get_logger
from edge_agent.spool.core import DiskFullRollback
from edge_agent.spool.database import DURABILITY, SELECT_PRIORITY_AFTER, record_crc
from edge_agent.spool.model import (
    AppendRequest,
    AppendResult,
    SpoolDiskFull,
    SpoolPriority,
    SpoolRecord,
    SpoolStats,
    SpoolStorage,
)
from edge_agent.spool.transfer import SpoolTransfer

DEGRADED_HOLD_S = 60.0
_log = get_logger("edge_agent.spool")
MEMORY_DURABILITY = "in memory only: lost if the agent stops before the disk is back"


class Spool(SpoolTransfer):
    """A crash-safe, bounded store of records waiting for the uplink's PUBACK.

    ``append`` returns only after the record is committed with an fsync (that return is the
    acknowledgement to the producer). ``lease`` hands records out, most important priority
    first and in append order within a priority, without removing them; ``ack`` removes
    them; ``release`` hands them back. ``now`` is the wall clock,
    ``monotonic`` times leases, ``age_clock`` measures record ages for TTLs
    (edge_agent/spool/age.py); ``degrade(stream, payload)`` shrinks a telemetry payload
    before whole records are thinned out (the agent passes its stream registry's hook,
    ``edge_agent.streams.StreamRegistry.degrade``: the spool itself knows no record format).

    A damaged file is salvaged while opening, unless ``salvage_on_open`` is False: then
    opening raises :class:`SpoolDamaged` and the caller salvages when it suits it.
    ``in_memory`` keeps the records in memory instead (not durable; ``path`` only names
    it), with record ids above ``first_id``.
    """

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
        except DiskFullRollback:
            if self._disk.filled_up(self._ledger.total_bytes):
                _log.warning(
                    "spool disk full: lower priorities degrade or are refused, "
                    "events use the reserve",
                    path=str(self.path),
                )
        try:
            return self._write(ready)  # once more, with the cap shrunk to what is held
        except DiskFullRollback:
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
            except DiskFullRollback:
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

    def _write(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        def insert() -> list[AppendResult]:
            results = []
            cap = self._cap()
            stamp = self._age.stamp(self._now())
            for request in requests:
                assert request.message_id is not None
                reason = self._evictor.make_room(request.priority, len(request.payload), cap)
                if reason:
                    results.append(self._refuse(request, reason))
                    continue
                priority = int(request.priority)
                row = (
                    request.stream,
                    priority,
                    request.message_id,
                    stamp.wall,
                    0,
                    len(request.payload),
                    record_crc(request.stream, priority, request.message_id, request.payload),
                    request.payload,
                    stamp.boot_id,
                    stamp.since_boot,
                    int(stamp.wall_trusted),
                )
                record_id = self._insert(request.priority, row)
                self._ledger[request.priority].appended += 1
                results.append(AppendResult(request.message_id, record_id))
            return results

        return self._transaction(insert)

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
        self._connection()
        wanted = list(dict.fromkeys(record_ids))
        if not wanted:
            return 0

        def delete() -> list[AppendResult]:
            self._delete(wanted, acked=True)
            return []

        acked_before = sum(f.acked for f in self._ledger.by_priority.values())
        try:
            self._transaction(delete)
        except DiskFullRollback:
            self._disk.reserve.release()
            try:
                self._transaction(delete)
            except DiskFullRollback:
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
        for suffix in ("", "-wal") if not self.in_memory else ():
            with contextlib.suppress(FileNotFoundError):
                file_bytes += os.stat(self.path.with_name(self.path.name + suffix)).st_size
        total = self._ledger.total_bytes
        cap = self.policy.max_bytes - self._damaged_bytes
        reasons = [
            reason
            for reason, applies in (
                ("disk full", self._disk.full),
                ("over the byte cap", total > cap),
                (
                    "degraded to fit the cap in the last minute",
                    self._monotonic() - self._degraded_at < DEGRADED_HOLD_S,
                ),
            )
            if applies
        ]
        return SpoolStats(
            max_bytes=self.policy.max_bytes,
            bytes=total,
            records=self._ledger.total_records,
            leased=len(self._leases),
            file_bytes=file_bytes,
            disk_full=self._disk.full,
            reserve_present=self._disk.reserve.present,
            degraded=bool(reasons),
            events_over_cap_bytes=max(0, total - cap),
            quarantined=self._ledger.quarantined,
            salvaged_files=len(self.salvage_reports),
            durability=MEMORY_DURABILITY if self.in_memory else DURABILITY,
            by_priority={
                priority.name.lower(): copy.copy(self._ledger[priority])
                for priority in SpoolPriority
            },
            storage=SpoolStorage.MEMORY if self.in_memory else SpoolStorage.DISK,
            degraded_reason="; ".join(reasons),
            damaged_files=self._damaged_files,
            damaged_bytes=self._damaged_bytes,
        )
