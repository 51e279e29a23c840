"""The spool the agent runs on, whatever state the disk is in (docs/spool.md).

A spool file that cannot be opened (a full or read-only file system, an I/O error) or that
needs a salvage does not stop the agent: records are kept in a bounded in-memory spool
(same priorities, quotas and degrade ladder, capped at ``SpoolPolicy.memory_bytes``) while
the disk is retried; a damaged file is salvaged on its own thread, after the agent is ready.
The same happens when the open file refuses a write for lack of space or breaks. Once the
disk takes writes again, the records in memory move into the file, in order and with their
message ids, and the spool is durable again.

While records are in memory, appends go to memory too, so that records of one priority
stay in append order: the file's are always older than memory's. Records in memory have ids
from :data:`MEMORY_ID_BASE` up; a record moved while the uplink had it leased stays leased
under its new id, and its old id is translated when it is acked or released.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from edge_agent.logs import get_logger
from edge_agent.spool.model import (
    AppendRequest,
    AppendResult,
    PriorityStats,
    SpoolDamaged,
    SpoolDiskFull,
    SpoolPolicy,
    SpoolPriority,
    SpoolRecord,
    SpoolStats,
    SpoolStorage,
)
from edge_agent.spool.opening import BackgroundSalvage, log_salvage
from edge_agent.spool.reserve import DiskReserve
from edge_agent.spool.salvage import SalvageReport
from edge_agent.spool.store import Spool

MEMORY_ID_BASE = 1 << 62
RETRY_INTERVAL_S = 5.0
SALVAGE_POLL_S = 0.5
SALVAGE_STOP_WAIT_S = 5.0
_MOVE_CHUNK = 256
# Beyond the records to move and twice the reserve: room for the WAL and new pages.
_FREE_MARGIN = 256 * 1024
# Less free space than this when the spool opens: the disk is full, new records go to
# memory straight away (appends would only fail), and the reserve is given up.
OPEN_MIN_FREE = 64 * 1024
_log = get_logger("edge_agent.spool")

OpenDisk = Callable[[bool], Spool]
"""Opens the spool file; the argument is ``salvage_on_open``."""
OpenMemory = Callable[[int], Spool]
"""Opens an in-memory spool whose ids start above the argument."""


class ResilientSpool:
    """A disk spool with an in-memory fallback; one thread owns it (``AsyncSpool``'s worker).

    ``maintain`` does the pending repairs (reopen, salvage, move records to disk); it does
    nothing until ``repairs_allowed`` (the agent allows them once it is ready) and otherwise
    at most every ``retry_interval`` seconds. ``wake_in`` says when it next has work.
    """

    def __init__(
        self,
        path: Path,
        policy: SpoolPolicy,
        open_disk: OpenDisk,
        open_memory: OpenMemory,
        *,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        retry_interval: float = RETRY_INTERVAL_S,
        repairs_allowed: bool = True,
    ) -> None:
        self.path = path
        self.policy = policy
        self._open_disk = open_disk
        self._open_memory = open_memory
        self._now = now
        self._monotonic = monotonic
        self._retry_interval = retry_interval
        self.repairs_allowed = repairs_allowed
        self.disk: Spool | None = None
        self.memory: Spool | None = None
        self.reason = ""
        self.moved_to_disk = 0
        self.salvage_reports: list[SalvageReport] = []
        self._next_memory_id = MEMORY_ID_BASE
        self._moved: dict[int, int] = {}  # memory id -> disk id, for records in flight
        # Counters of parts closed since (they count "since open" for the whole spool), and
        # records the file refused for lack of space that memory then kept.
        self._retired = {priority.name.lower(): PriorityStats() for priority in SpoolPriority}
        self._retired_quarantined = 0
        self._kept_not_refused = {priority.name.lower(): 0 for priority in SpoolPriority}
        self._salvage_due = False
        self._salvage: BackgroundSalvage | None = None
        self._next_attempt = float("-inf")
        if self._try_open_disk():
            free = self._free_bytes()
            if free is not None and free < OPEN_MIN_FREE:
                self._fall_back(f"disk full under {path.parent} ({free} bytes free)")
        if self.storage is not SpoolStorage.DISK:
            # The reserve was held for events on this disk; while records live in memory
            # it is more use to the agent's other state files (health, OTA, module state).
            with contextlib.suppress(OSError):
                DiskReserve(path.with_name(path.name + ".reserve"), policy.reserve_bytes).release()

    @property
    def storage(self) -> SpoolStorage:
        """Where records are kept now."""
        if self.memory is None:
            return SpoolStorage.DISK
        return SpoolStorage.MEMORY if self.disk is None else SpoolStorage.DISK_AND_MEMORY

    # -- falling back and coming back ------------------------------------------------------

    def _try_open_disk(self) -> bool:
        try:
            self.disk = self._open_disk(False)
        except SpoolDamaged as error:
            self._salvage_due = True
            self._fall_back(f"spool file damaged ({error.problem})")
            return False
        except (sqlite3.Error, OSError) as error:
            self._fall_back(f"cannot open {self.path}: {error}")
            return False
        return True

    def _fall_back(self, reason: str) -> None:
        """Keep new records in memory from now on, saying why."""
        if self.memory is None:
            self.memory = self._open_memory(self._next_memory_id)
        if reason != self.reason:
            _log.warning(
                "spool keeps records in memory until the disk can take them",
                reason=reason,
                memory_limit_bytes=self.policy.memory_bytes,
            )
        self.reason = reason
        self._next_attempt = self._monotonic() + self._retry_interval

    def allow_repairs(self) -> None:
        """From now on, reopen, salvage and move records to disk when due."""
        self.repairs_allowed = True
        self._next_attempt = float("-inf")

    def wake_in(self) -> float | None:
        """Seconds until ``maintain`` has something to do; None when nothing is pending."""
        if not self.repairs_allowed or (self.memory is None and not self._salvage_due):
            return None
        if self._salvage is not None:
            return SALVAGE_POLL_S
        return max(0.0, self._next_attempt - self._monotonic())

    def maintain(self) -> None:
        """Do the repair that is due, if any (cheap when there is none); never raises."""
        if not self.repairs_allowed or (self.memory is None and not self._salvage_due):
            return
        try:
            self._repair()
        except Exception:  # a repair must never take the spool's worker thread down
            _log.exception("spool repair failed; retrying later", path=str(self.path))
            self._next_attempt = self._monotonic() + self._retry_interval

    def _repair(self) -> None:
        if self._salvage is not None:
            if self._salvage.running:
                return
            self._finish_salvage()
        if self._monotonic() < self._next_attempt:
            return
        self._next_attempt = self._monotonic() + self._retry_interval
        if self.disk is None:
            if self._salvage_due:
                self._salvage = BackgroundSalvage(self.path, self.policy, self._now)
                return
            if not self._room_for_memory() or not self._try_open_disk():
                return
        if self.memory is not None and self._room_for_memory():
            self._move_to_disk()

    def _free_bytes(self) -> int | None:
        """Free bytes on the spool's file system (None when that cannot be told)."""
        directory = self.path.parent
        while not directory.exists() and directory != directory.parent:
            directory = directory.parent
        try:
            status = os.statvfs(directory)
        except OSError:
            return None
        return status.f_bavail * status.f_frsize

    def _room_for_memory(self) -> bool:
        """Whether the file system looks able to take what memory holds, and some."""
        held = self.memory.held_bytes if self.memory is not None else 0
        free = self._free_bytes()
        # Cannot tell: let the attempt itself say.
        return free is None or free >= held + 2 * self.policy.reserve_bytes + _FREE_MARGIN

    def _finish_salvage(self) -> None:
        assert self._salvage is not None
        outcome, self._salvage = self._salvage.outcome, None
        if isinstance(outcome, Exception):
            self._fall_back(f"spool salvage failed ({outcome}); retrying")
            return
        self._salvage_due = False
        if outcome is not None:
            self.salvage_reports.append(outcome)
            log_salvage(outcome)
        self._next_attempt = float("-inf")  # open the rescued file now

    def _move_to_disk(self) -> None:
        """Move every record from memory into the file, in id order, chunk by chunk."""
        assert self.disk is not None
        assert self.memory is not None
        memory = self.memory
        moved_now = 0
        while rows := memory.export_rows(0, _MOVE_CHUNK):
            leased = {row[0] for row in rows if memory.is_leased(row[0])}
            try:
                moved = self.disk.adopt_rows(rows, leased)
            except (SpoolDiskFull, sqlite3.Error) as error:
                self._fall_back(f"cannot move records to {self.path}: {error}")
                return
            self._moved.update({old: new for old, new in moved.items() if old in leased})
            memory.remove_rows([row[0] for row in rows])
            moved_now += len(moved)
        self.moved_to_disk += moved_now
        self._next_memory_id = max(self._next_memory_id, memory.last_id())
        self._retire(memory)
        self.memory = None
        _log.info("spool back on disk", path=str(self.path), moved_from_memory=moved_now)
        self.reason = ""

    # -- appending -------------------------------------------------------------------------

    def append_many(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        """Store records on disk, or in memory while the disk cannot take them.

        See ``Spool.append_many``. A record the disk refuses for lack of space is kept in
        memory instead; ``SpoolDiskFull`` is raised only when events fit neither.
        """
        if self.memory is not None or self.disk is None:
            return self._append_in_memory(requests)
        try:
            results = self.disk.append_many(requests)
        except SpoolDiskFull as error:
            # The file refused every record but the events, which did not fit either.
            self._fall_back(str(error))
            kept = self._append_in_memory(requests)
            self._count_kept(
                request
                for request, result in zip(requests, kept, strict=True)
                if result.stored and request.priority is not SpoolPriority.EVENTS
            )
            return kept
        except sqlite3.Error as error:
            self._fall_back(f"cannot write {self.path}: {error}")
            self._close_broken_disk()
            return self._append_in_memory(requests)
        refused = [i for i, result in enumerate(results) if result.refused == "disk-full"]
        if not refused:
            return results
        self._fall_back(f"disk full under {self.path}")
        kept = self._append_in_memory(
            [dataclasses.replace(requests[i], message_id=results[i].message_id) for i in refused]
        )
        for index, result in zip(refused, kept, strict=True):
            results[index] = result
        self._count_kept(
            requests[index] for index, result in zip(refused, kept, strict=True) if result.stored
        )
        return results

    def _count_kept(self, requests: Iterable[AppendRequest]) -> None:
        """Records the file counted as refused but memory kept: not refused after all."""
        for request in requests:
            self._kept_not_refused[request.priority.name.lower()] += 1

    def _close_broken_disk(self) -> None:
        # A file that fails other than by being full is reopened (and checked, salvaged
        # if need be) by the next repair; its unacked records go out again from there.
        if self.disk is not None:
            with contextlib.suppress(sqlite3.Error):
                self._retire(self.disk)
            self.disk.close()
            self.disk = None

    def _retire(self, part: Spool) -> None:
        """Keep the counters of ``part``, then close it."""
        try:
            figures = part.stats()
            _add_counters(self._retired, figures.by_priority)
            self._retired_quarantined += figures.quarantined
        finally:
            part.close()

    def _append_in_memory(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        assert self.memory is not None
        events = sum(
            len(r.payload) + self.policy.record_overhead
            for r in requests
            if r.priority is SpoolPriority.EVENTS
        )
        # Events may pass the memory cap (nothing else may), but only up to twice it.
        if events and self.memory.held_bytes + events > 2 * self.policy.memory_bytes:
            raise SpoolDiskFull(
                f"spool {self.path}: disk unusable and the memory queue is full "
                f"({self.memory.held_bytes} bytes); keep the event and retry"
            )
        return self.memory.append_many(requests)

    # -- handing out -----------------------------------------------------------------------

    def lease(
        self,
        limit: int = 100,
        *,
        max_bytes: int | None = None,
        priorities: Iterable[SpoolPriority] | None = None,
    ) -> list[SpoolRecord]:
        """See ``Spool.lease``; per priority, the file's records go before memory's."""
        parts = [part for part in (self.disk, self.memory) if part is not None]
        if len(parts) == 1:
            return parts[0].lease(limit, max_bytes=max_bytes, priorities=priorities)
        records: list[SpoolRecord] = []
        used = 0
        for priority in sorted(set(priorities or SpoolPriority)):
            for part in parts:
                while len(records) < limit:
                    # With a byte budget, one at a time: a record that does not fit ends
                    # the lease, so nothing newer of its priority can overtake it.
                    step = limit - len(records) if max_bytes is None else 1
                    got = part.lease(step, priorities=[priority])
                    if not got:
                        break
                    if max_bytes is not None and records and used + len(got[0].payload) > max_bytes:
                        part.release([got[0].id])
                        return records
                    records += got
                    used += sum(len(record.payload) for record in got)
                    if max_bytes is None:
                        break
        return records

    def _split(self, record_ids: Iterable[int]) -> tuple[list[int], list[int], list[int]]:
        """(disk ids, memory ids, moved memory ids) of ``record_ids``."""
        on_disk: list[int] = []
        in_memory: list[int] = []
        moved: list[int] = []
        for record_id in record_ids:
            if record_id < MEMORY_ID_BASE:
                on_disk.append(record_id)
            elif record_id in self._moved:
                moved.append(record_id)
                on_disk.append(self._moved[record_id])
            else:
                in_memory.append(record_id)
        return on_disk, in_memory, moved

    def ack(self, record_ids: Iterable[int]) -> int:
        """See ``Spool.ack``."""
        on_disk, in_memory, moved = self._split(record_ids)
        acked = 0
        if on_disk and self.disk is not None:
            acked += self.disk.ack(on_disk)
        if in_memory and self.memory is not None:
            acked += self.memory.ack(in_memory)
        for record_id in moved:
            self._moved.pop(record_id, None)
        return acked

    def release(self, record_ids: Iterable[int]) -> None:
        """See ``Spool.release``."""
        on_disk, in_memory, moved = self._split(record_ids)
        if on_disk and self.disk is not None:
            self.disk.release(on_disk)
        if in_memory and self.memory is not None:
            self.memory.release(in_memory)
        for record_id in moved:
            self._moved.pop(record_id, None)

    def release_all(self) -> None:
        """See ``Spool.release_all``."""
        for part in (self.disk, self.memory):
            if part is not None:
                part.release_all()
        self._moved.clear()

    def expire(self) -> None:
        """See ``Spool.expire``."""
        for part in (self.disk, self.memory):
            if part is not None:
                part.expire()

    # -- reporting and closing -------------------------------------------------------------

    def stats(self) -> SpoolStats:
        """The file's figures plus memory's, with where records are kept and why."""
        memory = self.memory.stats() if self.memory is not None else None
        if self.disk is not None:
            stats = self.disk.stats()
            if memory is not None:
                _add(stats, memory)
        else:
            assert memory is not None
            stats = dataclasses.replace(memory, max_bytes=self.policy.max_bytes)
            stats.reserve_present = False
        stats.storage = self.storage
        if memory is not None:
            stats.memory_records, stats.memory_bytes = memory.records, memory.bytes
            stats.durability = memory.durability
        _add_counters(stats.by_priority, self._retired)
        stats.quarantined += self._retired_quarantined
        for name, kept in self._kept_not_refused.items():
            stats.by_priority[name].refused -= kept
        reasons = [self.reason] if self.reason and memory is not None else []
        if self._salvage_due:
            reasons.append("salvage pending")
        reasons += [stats.degraded_reason] if stats.degraded_reason else []
        stats.degraded_reason = "; ".join(dict.fromkeys(reasons))
        stats.degraded = bool(stats.degraded_reason)
        stats.memory_max_bytes = self.policy.memory_bytes
        stats.moved_to_disk = self.moved_to_disk
        stats.salvage_pending = self._salvage_due
        stats.salvaged_files += len(self.salvage_reports)
        return stats

    def close(self) -> None:
        """Close both parts; give a running salvage a moment (it is crash-safe anyway)."""
        if self._salvage is not None and not self._salvage.wait(SALVAGE_STOP_WAIT_S):
            _log.warning("spool salvage still running at close", path=str(self.path))
        for part in (self.disk, self.memory):
            if part is not None:
                part.close()


_COUNTERS = ("appended", "acked", "downsampled", "dropped", "expired", "refused")


def _add_counters(into: dict[str, PriorityStats], more: dict[str, PriorityStats]) -> None:
    """Add the counters (appended, acked, ...) of ``more`` to ``into``, per priority."""
    for name, figures in more.items():
        for counter in _COUNTERS:
            setattr(into[name], counter, getattr(into[name], counter) + getattr(figures, counter))


def _add(stats: SpoolStats, more: SpoolStats) -> None:
    """Add ``more``'s records, bytes and counters to ``stats`` (in place)."""
    stats.bytes += more.bytes
    stats.records += more.records
    stats.leased += more.leased
    stats.quarantined += more.quarantined
    _add_counters(stats.by_priority, more.by_priority)
    for name, figures in more.by_priority.items():
        stats.by_priority[name].records += figures.records
        stats.by_priority[name].bytes += figures.bytes
