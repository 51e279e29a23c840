"""Moving records between spools: from the in-memory stand-in to the file once it is back.

The resilient spool (resilient.py) exports rows from one spool, has the other adopt them with
their stamps (and leases) kept, then removes them from the first; ids are never reused.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

from edge_agent.spool.core import ROW_COLUMNS, DiskFullRollback, Row, SpoolCore
from edge_agent.spool.model import AppendResult, SpoolDiskFull, SpoolPriority

_SELECT_ROWS_AFTER = f"SELECT {ROW_COLUMNS} FROM records WHERE id > ? ORDER BY id LIMIT ?"  # noqa: S608


class SpoolTransfer(SpoolCore):
    """The :class:`Spool`'s side of moving records between spools (memory -> disk)."""

    @property
    def held_bytes(self) -> int:
        """Accounted bytes of the records held now."""
        return self._ledger.total_bytes

    def last_id(self) -> int:
        """The highest record id ever given out by this file (ids are never reused)."""
        row = (
            self._connection()
            .execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'")
            .fetchone()
        )
        return int(row[0]) if row else 0

    def is_leased(self, record_id: int) -> bool:
        """Whether ``record_id`` is out with the uplink."""
        return record_id in self._leases

    def export_rows(self, after: int, limit: int) -> list[Row]:
        """Up to ``limit`` stored rows with ids above ``after``, in id order (``id`` first)."""
        rows: list[Row] = self._connection().execute(_SELECT_ROWS_AFTER, (after, limit)).fetchall()
        return rows

    def remove_rows(self, record_ids: Sequence[int]) -> None:
        """Delete rows that moved to another spool (not counted as acked or dropped)."""
        self._connection()

        def delete() -> list[AppendResult]:
            self._delete(record_ids, acked=False)
            return []

        self._transaction(delete)
        self._leases.forget(record_ids)

    def adopt_rows(self, rows: Sequence[Row], leased: Container[int]) -> dict[int, int]:
        """Store rows exported by another spool, keeping their stamps; old id -> new id.

        One transaction. Room is made as for an append (a row that cannot fit is refused
        and counted); rows whose old id is in ``leased`` are marked leased here, since the
        uplink has them in flight. Raises SpoolDiskFull when the disk cannot take them.
        """
        self._connection()
        self._check_disk()
        moved: dict[int, int] = {}

        def insert() -> list[AppendResult]:
            cap = self._cap()
            for row in rows:
                old_id, priority, size = row[0], SpoolPriority(row[2]), row[6]
                if self._evictor.make_room(priority, size, cap):
                    self._ledger[priority].refused += 1
                    continue
                moved[old_id] = self._insert(priority, row[1:])
            return []

        try:
            self._transaction(insert)
        except DiskFullRollback:
            moved.clear()
            self._disk.filled_up(self._ledger.total_bytes)
            raise SpoolDiskFull(f"spool {self.path}: disk full, cannot take records") from None
        for row in rows:
            if row[0] in moved and row[0] in leased:
                self._leases.take(moved[row[0]], SpoolPriority(row[2]), self._monotonic())
        return moved
