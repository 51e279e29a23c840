"""What the spool stores, the policy that bounds it, and what it reports."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

MIB = 1024 * 1024
DAY = 86_400.0


class SpoolPriority(enum.IntEnum):
    """Importance of a record; lower values are handed out first and degraded last.

    ``EVENTS`` are never dropped; ``CONTROL`` (reported state, command replies, OTA status)
    is dropped oldest-first when it must go; the two telemetry classes are downsampled,
    then dropped oldest-first.
    """

    EVENTS = 0
    CONTROL = 1
    TELEMETRY_HIGH = 2
    TELEMETRY_LOW = 3


class SpoolError(Exception):
    """The spool cannot do what was asked (see the subclasses)."""


class SpoolLocked(SpoolError):
    """Another process has the spool file open."""


class SpoolDiskFull(SpoolError):
    """An event could not be stored even after releasing the disk reserve: keep it, retry."""


class SpoolClosed(SpoolError):
    """The spool was closed."""


class SpoolDamaged(SpoolError):
    """The spool file fails its health check and was opened without salvaging it."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"spool {path}: damaged ({problem}); salvage it")
        self.problem = problem


def _frozen(mapping: Mapping[SpoolPriority, Any]) -> Mapping[SpoolPriority, Any]:
    return MappingProxyType(dict(mapping))


DEFAULT_QUOTAS = _frozen(
    {
        SpoolPriority.CONTROL: 0.05,
        SpoolPriority.TELEMETRY_HIGH: 0.80,
        SpoolPriority.TELEMETRY_LOW: 0.50,
    }
)
DEFAULT_TTLS = _frozen(
    {
        SpoolPriority.CONTROL: 7 * DAY,
        SpoolPriority.TELEMETRY_HIGH: 7 * DAY,
        SpoolPriority.TELEMETRY_LOW: 2 * DAY,
    }
)


@dataclass(frozen=True, slots=True)
class SpoolPolicy:
    """The bounds of a spool (docs/spool.md, "Policies").

    ``max_bytes`` caps the accounted size (payload plus ``record_overhead`` per record) of
    all records; only events may push past it. ``quotas`` give each priority's share of the
    cap as a fraction (events have none). ``ttls`` are seconds after which a record expires
    (events have none). Telemetry is downsampled at most ``max_decimation`` times (each
    halving its samples) before it is dropped; ``degrade_window`` records are degraded per
    step. ``reserve_bytes`` of disk are held in a reserve file that is given up for events
    when the disk is full. While the disk cannot be opened or written, records are kept in
    memory, up to ``memory_bytes`` (docs/spool.md, "When the disk cannot be used"). At most
    ``max_damaged_copies`` damaged files set aside by salvage are kept; their bytes count
    against ``max_bytes``.
    """

    max_bytes: int = 256 * MIB
    quotas: Mapping[SpoolPriority, float] = field(default_factory=lambda: DEFAULT_QUOTAS)
    ttls: Mapping[SpoolPriority, float] = field(default_factory=lambda: DEFAULT_TTLS)
    max_decimation: int = 3
    degrade_window: int = 16
    reserve_bytes: int = MIB
    record_overhead: int = 64
    lease_timeout: float = 300.0
    expiry_interval: float = 1.0
    wal_autocheckpoint_pages: int = 128
    memory_bytes: int = 8 * MIB
    max_damaged_copies: int = 2

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if self.memory_bytes <= 0:
            raise ValueError("memory_bytes must be positive")
        if self.max_damaged_copies < 0:
            raise ValueError("max_damaged_copies must be 0 or more")
        if SpoolPriority.EVENTS in self.quotas or SpoolPriority.EVENTS in self.ttls:
            raise ValueError("events have no quota and no TTL: they are never dropped")
        if any(not 0 < share <= 1 for share in self.quotas.values()):
            raise ValueError("quotas are fractions of max_bytes in (0, 1]")
        if any(ttl <= 0 for ttl in self.ttls.values()):
            raise ValueError("TTLs must be positive seconds")

    def quota_bytes(self, priority: SpoolPriority) -> int | None:
        """The most bytes ``priority`` may hold, or None when only the cap applies."""
        share = self.quotas.get(priority)
        return None if share is None else int(self.max_bytes * share)


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One record a producer hands to the spool."""

    stream: str
    payload: bytes
    priority: SpoolPriority = SpoolPriority.TELEMETRY_LOW
    message_id: bytes | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """The spool's answer to one append: durably stored (``record_id``) or refused, and why.

    A stored record was committed (fsync'd) before this result existed. ``refused`` is
    ``"disk-full"``, ``"over-cap"``, ``"over-quota"`` or ``"too-large"``; refusals are
    counted in the stats.
    """

    message_id: bytes
    record_id: int | None
    refused: str = ""

    @property
    def stored(self) -> bool:
        """Whether the record is in the spool."""
        return self.record_id is not None


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """A record handed to the uplink by ``lease``; it stays in the spool until acked."""

    id: int
    stream: str
    priority: SpoolPriority
    message_id: bytes
    payload: bytes
    created: float
    decimation: int


@dataclass(slots=True)
class PriorityStats:
    """Live figures and counters (since open) of one priority."""

    records: int = 0
    bytes: int = 0
    quota_bytes: int | None = None
    appended: int = 0
    acked: int = 0
    downsampled: int = 0
    dropped: int = 0
    expired: int = 0
    refused: int = 0


class SpoolStorage(enum.StrEnum):
    """Where the spool keeps records now (docs/spool.md, "When the disk cannot be used")."""

    DISK = "disk"
    MEMORY = "memory"  # the disk spool could not be opened: memory only, not durable
    DISK_AND_MEMORY = "disk+memory"  # the disk refused a write: newer records in memory


@dataclass(slots=True)
class SpoolStats:
    """What the spool reports in health and ``edge-agent status``.

    ``degraded`` is True while the disk is full, records are held in memory, a salvage is
    pending, or the cap forced degradation recently (``degraded_reason`` says which);
    ``events_over_cap_bytes`` is how far events alone push the spool past its cap.
    ``storage`` says where records are kept; ``memory_*`` describe the in-memory queue.
    ``damaged_files``/``damaged_bytes`` are the damaged copies kept for forensics.
    """

    max_bytes: int
    bytes: int
    records: int
    leased: int
    file_bytes: int
    disk_full: bool
    reserve_present: bool
    degraded: bool
    events_over_cap_bytes: int
    quarantined: int
    salvaged_files: int
    durability: str
    by_priority: dict[str, PriorityStats]
    storage: SpoolStorage = SpoolStorage.DISK
    degraded_reason: str = ""
    memory_records: int = 0
    memory_bytes: int = 0
    memory_max_bytes: int = 0
    moved_to_disk: int = 0
    salvage_pending: bool = False
    damaged_files: int = 0
    damaged_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)
