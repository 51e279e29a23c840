"""python-can's reader warnings, counted as malformed records instead of logged one per line.

python-can's TRC reader warns and skips a line it cannot parse, its ASC reader warns about a
length mismatch, its BLF reader about a container it cannot read, each through the standard
logger of its module. A damaged file of thousands of lines would print thousands of lines on a
replay's stderr (or the agent's log) and leave the report's count of malformed records at 0.
While ``reading.stats`` is set in a thread (the log reader sets it around each call into
python-can, and puts back what was there), every warning from those loggers in that thread
goes into that :class:`~edge_agent.can.logs.LogStats` instead (count, and the first few
reasons), and is not logged; other threads and other times log as before.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

# The loggers of python-can's readers (can/io/*.py).
READER_LOGGERS = (
    "can.io.asc",
    "can.io.blf",
    "can.io.canutils",
    "can.io.csv",
    "can.io.mf4",
    "can.io.sqlite",
    "can.io.trc",
)
# A reason quotes the line python-can could not parse; a line may be 4096 characters.
MAX_REASON_CHARS = 160


class Counts(Protocol):
    """Where complaints go: :class:`~edge_agent.can.logs.LogStats`."""

    frames: int

    def bad(self, where: str, reason: str) -> None:
        """Count one malformed record with its reason."""


# Per thread: the Counts that python-can's warnings go to now (attribute ``stats``), if any.
reading = threading.local()


class _IntoStats(logging.Filter):
    """Turns a reader's warnings in a thread that is reading a log into counted records."""

    def filter(self, record: logging.LogRecord) -> bool:
        stats: Counts | None = getattr(reading, "stats", None)
        if stats is None or record.levelno < logging.WARNING:
            return True
        reason = record.getMessage()
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[: MAX_REASON_CHARS - 3] + "..."
        stats.bad(f"after record {stats.frames}", reason)
        return False


_FILTER = _IntoStats()
for _name in READER_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)
