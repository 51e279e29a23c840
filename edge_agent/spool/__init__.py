"""The durable, bounded spool between producers and the uplink (docs/spool.md).

:class:`Spool` is the synchronous core (one thread owns it); :class:`AsyncSpool` runs one on
a dedicated worker thread for the event loop, with group commit of concurrent appends.
"""

from edge_agent.spool.aio import AsyncSpool
from edge_agent.spool.model import (
    AppendRequest,
    AppendResult,
    PriorityStats,
    SpoolClosed,
    SpoolDiskFull,
    SpoolError,
    SpoolLocked,
    SpoolPolicy,
    SpoolPriority,
    SpoolRecord,
    SpoolStats,
)
from edge_agent.spool.salvage import SalvageReport
from edge_agent.spool.store import Spool

__all__ = [
    "AppendRequest",
    "AppendResult",
    "AsyncSpool",
    "PriorityStats",
    "SalvageReport",
    "Spool",
    "SpoolClosed",
    "SpoolDiskFull",
    "SpoolError",
    "SpoolLocked",
    "SpoolPolicy",
    "SpoolPriority",
    "SpoolRecord",
    "SpoolStats",
]
