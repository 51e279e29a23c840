"""Which records are out with the uplink, in memory.

Leases do not survive a restart: after a crash every unacked record is handed out again,
with its same message id, which is what lets the cloud drop the duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from edge_agent.spool.model import SpoolPriority


class Leases:
    """Leased record ids with their priority and lease time, and a read cursor per priority.

    The cursor is the highest id of a priority already looked at by ``lease``; records above
    it have never been handed out. Releasing a record moves its priority's cursor back so it
    goes out again before anything newer.
    """

    def __init__(self) -> None:
        self._leased: dict[int, tuple[SpoolPriority, float]] = {}
        self.cursor: dict[SpoolPriority, int] = dict.fromkeys(SpoolPriority, 0)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._leased

    def __len__(self) -> int:
        return len(self._leased)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._leased))

    def take(self, record_id: int, priority: SpoolPriority, since: float) -> None:
        """Mark ``record_id`` leased at monotonic time ``since``."""
        self._leased[record_id] = (priority, since)
        self.cursor[priority] = max(self.cursor[priority], record_id)

    def forget(self, record_ids: Iterable[int]) -> None:
        """Drop leases of records that are gone (acked)."""
        for record_id in record_ids:
            self._leased.pop(record_id, None)

    def release(self, record_ids: Iterable[int]) -> None:
        """Hand records back: they will be leased again before newer ones."""
        for record_id in record_ids:
            lease = self._leased.pop(record_id, None)
            if lease is not None:
                priority = lease[0]
                self.cursor[priority] = min(self.cursor[priority], record_id - 1)

    def stale(self, deadline: float) -> list[int]:
        """Records leased before ``deadline``."""
        return [record_id for record_id, (_, since) in self._leased.items() if since < deadline]
