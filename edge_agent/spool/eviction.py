"""Keeping the spool inside its bounds: quotas, the byte cap, TTLs, and the degrade ladder.

Everything here runs inside the caller's open transaction, so an append and the
degradation that made room for it commit (or roll back) together.

Ladder (docs/spool.md, "Eviction order"): victims are taken from the least important
priority first, and only from priorities no more important than the incoming record.
Telemetry is downsampled oldest-first (the degrade hook shrinks a record, e.g. the telemetry
module's transform halves a batch's samples; where the hook cannot, every other record of
the oldest window goes) up to ``max_decimation`` times, then dropped oldest-first. Control
records are dropped oldest-first. Events are never touched.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Callable, Container
from dataclasses import dataclass, field

from edge_agent.logs import get_logger
from edge_agent.spool.age import AgeStamp
from edge_agent.spool.database import record_crc
from edge_agent.spool.model import PriorityStats, SpoolPolicy, SpoolPriority

# (stream, payload) -> a smaller payload, or None when this record cannot shrink. The spool
# knows no record format: the agent passes ``StreamRegistry.degrade`` (edge_agent.streams).
DegradeHook = Callable[[str, bytes], bytes | None]
# Written in an earlier boot: another boot id, no stamp (an older agent wrote it, or it was
# salvaged), or a boot-clock reading ahead of ours (the clock restarted: a reboot).
_OLDER_BOOT = "boot_id IS NOT ? OR since_boot IS NULL OR since_boot > ?"
# Records of an earlier boot are looked at this often (boot-clock seconds): their queries
# cannot use an index, and TTLs are hours or days.
OLDER_BOOTS_EVERY_S = 60.0
VICTIM_ORDER = (SpoolPriority.TELEMETRY_LOW, SpoolPriority.TELEMETRY_HIGH, SpoolPriority.CONTROL)
_log = get_logger("edge_agent.spool")


@dataclass(slots=True)
class Ledger:
    """Bytes, records and counters per priority, kept in step with the table."""

    by_priority: dict[SpoolPriority, PriorityStats] = field(
        default_factory=lambda: {priority: PriorityStats() for priority in SpoolPriority}
    )
    quarantined: int = 0

    def __getitem__(self, priority: SpoolPriority) -> PriorityStats:
        return self.by_priority[priority]

    @property
    def total_bytes(self) -> int:
        """Accounted bytes of all records."""
        return sum(figures.bytes for figures in self.by_priority.values())

    @property
    def total_records(self) -> int:
        """Records in the spool."""
        return sum(figures.records for figures in self.by_priority.values())

    def snapshot(self) -> Ledger:
        """A copy to restore if the transaction rolls back."""
        return copy.deepcopy(self)


class Evictor:
    """Makes room for records and expires old ones, on the spool's connection."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        policy: SpoolPolicy,
        ledger: Callable[[], Ledger],
        leased: Container[int],
        degrade: DegradeHook | None,
    ) -> None:
        self._db = connection
        self._policy = policy
        self._ledger = ledger
        self._leased = leased
        self._degrade_hook = degrade
        # Per priority: every record with an id up to here is fully decimated (or gone).
        self._decimated_up_to: dict[SpoolPriority, int] = dict.fromkeys(SpoolPriority, 0)
        self.degraded_recently = False
        # Whether records of an earlier boot may be left (their age needs the slow rules).
        self.older_boots = True
        self._older_boots_due = float("-inf")

    def forget_progress(self) -> None:
        """After a rollback: rescan for decimation candidates from the start."""
        self._decimated_up_to = dict.fromkeys(SpoolPriority, 0)

    def cost(self, payload_size: int) -> int:
        """Accounted bytes of a record with a payload of ``payload_size`` bytes."""
        return payload_size + self._policy.record_overhead

    def make_room(self, priority: SpoolPriority, payload_size: int, cap: int) -> str:
        """Degrade what the policy allows until the record fits; "" or a refusal reason."""
        ledger = self._ledger()
        cost = self.cost(payload_size)
        quota = self._policy.quota_bytes(priority)
        if priority is not SpoolPriority.EVENTS:
            if cost > cap or (quota is not None and cost > quota):
                return "too-large"
            while quota is not None and ledger[priority].bytes + cost > quota:
                if not self._degrade(priority, ledger[priority].bytes + cost - quota):
                    return "over-quota"
        while ledger.total_bytes + cost > cap:
            deficit = ledger.total_bytes + cost - cap
            victims = [v for v in VICTIM_ORDER if v >= priority and ledger[v].records]
            if not any(self._degrade(victim, deficit) for victim in victims):
                # Nothing left that may go: events are stored past the cap, others refused.
                return "" if priority is SpoolPriority.EVENTS else "over-cap"
        return ""

    def _degrade(self, victim: SpoolPriority, deficit: int) -> bool:
        """One step down the ladder for ``victim``; True if it freed bytes."""
        self.degraded_recently = True
        if victim is SpoolPriority.CONTROL:
            return self._drop_oldest(victim, deficit) > 0
        candidates = self._decimation_candidates(victim)
        if (
            self._degrade_hook is not None
            and candidates
            and self._downsample(victim, candidates, deficit)
        ):
            return True
        if len(candidates) >= 2 and self._thin(victim, candidates):
            return True
        return self._drop_oldest(victim, deficit) > 0

    def _unleased(self, priority: SpoolPriority, after: int, limit: int) -> list[tuple[int, ...]]:
        rows = self._db.execute(
            "SELECT id, size, decimation FROM records WHERE priority = ? AND id > ? "
            "ORDER BY id LIMIT ?",
            (int(priority), after, limit),
        ).fetchall()
        return [row for row in rows if row[0] not in self._leased]

    def _decimation_candidates(self, priority: SpoolPriority) -> list[tuple[int, int, int]]:
        """The oldest unleased records of ``priority`` that can still be downsampled."""
        window = self._policy.degrade_window
        after = self._decimated_up_to[priority]
        prefix_done = True
        candidates: list[tuple[int, int, int]] = []
        while len(candidates) < window:
            rows = self._db.execute(
                "SELECT id, size, decimation FROM records WHERE priority = ? AND id > ? "
                "ORDER BY id LIMIT 256",
                (int(priority), after),
            ).fetchall()
            if not rows:
                break
            for record_id, size, decimation in rows:
                after = record_id
                if record_id in self._leased:
                    prefix_done = False
                elif decimation >= self._policy.max_decimation:
                    if prefix_done:
                        self._decimated_up_to[priority] = record_id
                else:
                    prefix_done = False
                    candidates.append((record_id, size, decimation))
                    if len(candidates) == window:
                        break
        return candidates

    def _downsample(
        self, priority: SpoolPriority, candidates: list[tuple[int, int, int]], deficit: int
    ) -> bool:
        assert self._degrade_hook is not None
        ledger = self._ledger()
        freed = 0
        for record_id, size, decimation in candidates:
            row = self._db.execute(
                "SELECT stream, message_id, payload FROM records WHERE id = ?", (record_id,)
            ).fetchone()
            stream, message_id, payload = row
            try:
                smaller = self._degrade_hook(stream, payload)
            except Exception:  # a hook that breaks must not break appends
                _log.exception("spool degrade hook failed", record=record_id)
                smaller = None
            if smaller is None or len(smaller) >= size:
                # Cannot shrink this one: treat it as fully decimated (it will be dropped).
                self._db.execute(
                    "UPDATE records SET decimation = ? WHERE id = ?",
                    (self._policy.max_decimation, record_id),
                )
                continue
            crc = record_crc(stream, int(priority), message_id, smaller)
            self._db.execute(
                "UPDATE records SET payload = ?, size = ?, crc = ?, decimation = ? WHERE id = ?",
                (smaller, len(smaller), crc, decimation + 1, record_id),
            )
            freed += size - len(smaller)
            ledger[priority].bytes -= size - len(smaller)
            ledger[priority].downsampled += 1
            if freed >= deficit:
                break
        return freed > 0

    def _thin(self, priority: SpoolPriority, candidates: list[tuple[int, int, int]]) -> bool:
        ledger = self._ledger()
        gone = candidates[1::2]
        kept = candidates[0::2]
        self._db.executemany("DELETE FROM records WHERE id = ?", [(row[0],) for row in gone])
        self._db.executemany(
            "UPDATE records SET decimation = decimation + 1 WHERE id = ?",
            [(row[0],) for row in kept],
        )
        ledger[priority].records -= len(gone)
        ledger[priority].bytes -= sum(self.cost(row[1]) for row in gone)
        ledger[priority].downsampled += len(gone)
        return bool(gone)

    def _drop_oldest(self, priority: SpoolPriority, deficit: int) -> int:
        ledger = self._ledger()
        freed = 0
        doomed: list[int] = []
        after = 0
        while freed < deficit:
            rows = self._unleased(priority, after, self._policy.degrade_window)
            if not rows:
                break
            for record_id, size, _decimation in rows:
                after = record_id
                doomed.append(record_id)
                freed += self.cost(size)
                if freed >= deficit:
                    break
        self._db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in doomed])
        ledger[priority].records -= len(doomed)
        ledger[priority].bytes -= freed
        ledger[priority].dropped += len(doomed)
        return freed

    def expire(self, now: AgeStamp) -> int:
        """Delete unleased records older than their priority's TTL; return how many.

        Ages follow edge_agent/spool/age.py: the boot clock within a boot, the wall clock
        across boots only when it was trusted at both ends, else the time since this boot.
        """
        ledger = self._ledger()
        expired = 0
        older_boots = self.older_boots and now.since_boot >= self._older_boots_due
        if older_boots:
            self._older_boots_due = now.since_boot + OLDER_BOOTS_EVERY_S
        for priority, ttl in self._policy.ttls.items():
            rows = self._db.execute(
                "SELECT id, size FROM records "
                "WHERE priority = ? AND boot_id IS ? AND since_boot < ?",
                (int(priority), now.boot_id, now.since_boot - ttl),
            ).fetchall()
            if older_boots:
                rows += self._expired_from_older_boots(priority, ttl, now)
            rows = [row for row in rows if row[0] not in self._leased]
            self._db.executemany("DELETE FROM records WHERE id = ?", [(r[0],) for r in rows])
            ledger[priority].records -= len(rows)
            ledger[priority].bytes -= sum(self.cost(row[1]) for row in rows)
            ledger[priority].expired += len(rows)
            expired += len(rows)
        if older_boots:
            self.check_older_boots(now)
        return expired

    def check_older_boots(self, now: AgeStamp) -> None:
        """Look whether records of an earlier boot are left (see ``_expired_from_older_boots``)."""
        self.older_boots = bool(
            self._db.execute(
                f"SELECT EXISTS (SELECT 1 FROM records WHERE {_OLDER_BOOT})",  # noqa: S608
                (now.boot_id, now.since_boot),
            ).fetchone()[0]
        )

    def _expired_from_older_boots(
        self, priority: SpoolPriority, ttl: float, now: AgeStamp
    ) -> list[tuple[int, int]]:
        older = f"({_OLDER_BOOT})"
        rows: list[tuple[int, int]] = []
        if now.wall_trusted:
            rows += self._db.execute(
                f"SELECT id, size FROM records WHERE priority = ? AND {older} "  # noqa: S608
                "AND wall_trusted = 1 AND created < ?",
                (int(priority), now.boot_id, now.since_boot, now.wall - ttl),
            ).fetchall()
        if now.since_boot >= ttl:  # even counted from this boot's start, they are too old
            rows += self._db.execute(
                f"SELECT id, size FROM records WHERE priority = ? AND {older} "  # noqa: S608
                "AND NOT (wall_trusted = 1 AND ?)",
                (int(priority), now.boot_id, now.since_boot, int(now.wall_trusted)),
            ).fetchall()
        return rows
