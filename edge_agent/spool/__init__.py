"""The durable, bounded spool between producers and the uplink (docs/spool.md).

:class:`Spool` is the synchronous core (one thread owns it); :class:`AsyncSpool` runs one on
a dedicated worker thread for the event loop, with group commit of concurrent appends, and
falls back to memory while the disk cannot be used (:class:`ResilientSpool`).
"""

from edge_agent.spool.age import AgeClock
from edge_agent.spool.aio import AsyncSpool
from edge_agent.spool.eviction import DegradeHook
from edge_agent.spool.model import (
    AppendRequest,
    AppendResult,
    PriorityStats,
    SpoolClosed,
    SpoolDamaged,
    SpoolDiskFull,
    SpoolError,
    SpoolLocked,
    SpoolPolicy,
    SpoolPriority,
    SpoolRecord,
    SpoolStats,
    SpoolStorage,
)
from edge_agent.spool.resilient import ResilientSpool
from edge_agent.spool.salvage import SalvageReport
from edge_agent.spool.store import Spool

__all__ = [
    "AgeClock",
    "AppendRequest",
    "AppendResult",
    "AsyncSpool",
    "DegradeHook",
    "PriorityStats",
    "ResilientSpool",
    "SalvageReport",
    "Spool",
    "SpoolClosed",
    "SpoolDamaged",
    "SpoolDiskFull",
    "SpoolError",
    "SpoolLocked",
    "SpoolPolicy",
    "SpoolPriority",
    "SpoolRecord",
    "SpoolStats",
    "SpoolStorage",
]
