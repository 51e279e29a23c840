"""Cost-aware uplink: per-link byte budgets that hold back telemetry, never events.

Each link profile has a bucket of ``budget_bytes`` that refills evenly over ``window_s``
(a token bucket: a burst may use the whole budget, the long-run rate is the budget per
window). Every byte sent on the link is taken from its bucket, whatever its priority, so
events and control traffic use budget too, but they are never held back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from edge_agent.modules.cloud_link.config import LinkProfile
from edge_agent.spool import SpoolPriority

ALWAYS_SENT = (SpoolPriority.EVENTS, SpoolPriority.CONTROL)
# Bytes an MQTT v5 QoS 1 PUBLISH adds around topic and payload (fixed header, packet id,
# properties with the message-id user property) plus its PUBACK: close enough for a budget.
PUBLISH_OVERHEAD = 64


def publish_cost(topic: str, payload_bytes: int) -> int:
    """Bytes one QoS 1 publish of ``payload_bytes`` on ``topic`` puts on the link."""
    return payload_bytes + len(topic.encode()) + PUBLISH_OVERHEAD


@dataclass
class _Bucket:
    profile: LinkProfile
    level: float
    updated: float
    sent_bytes: int = 0


@dataclass
class LinkBudgets:
    """The buckets of every link profile, and which one is active.

    ``now`` is a monotonic clock in seconds. Switching links keeps each bucket's level:
    going back to cellular does not hand out a fresh budget.
    """

    profiles: Mapping[str, LinkProfile]
    active: str
    now: Callable[[], float]
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reconfigure(self.profiles, self.active)

    def reconfigure(self, profiles: Mapping[str, LinkProfile], active: str) -> None:
        """Take new profiles; buckets of profiles that still exist keep their level."""
        if active not in profiles:
            raise ValueError(f"unknown link {active!r}")
        now = self.now()
        buckets: dict[str, _Bucket] = {}
        for name, profile in profiles.items():
            old = self._buckets.get(name)
            capacity = float(profile.budget_bytes or 0)
            if old is None:
                buckets[name] = _Bucket(profile, capacity, now)
            else:
                self._refill(old)
                buckets[name] = _Bucket(profile, min(old.level, capacity), now, old.sent_bytes)
        self.profiles, self.active, self._buckets = dict(profiles), active, buckets

    def switch(self, link: str) -> bool:
        """Make ``link`` the active profile; False (and no change) when it is unknown."""
        if link not in self._buckets:
            return False
        self.active = link
        return True

    def _refill(self, bucket: _Bucket) -> None:
        now = self.now()
        budget = bucket.profile.budget_bytes
        if budget is not None:
            rate = budget / bucket.profile.window_s
            bucket.level = min(float(budget), bucket.level + (now - bucket.updated) * rate)
        bucket.updated = now

    def allowed(self) -> list[SpoolPriority]:
        """The priorities the active link may send now (events and control always)."""
        bucket = self._buckets[self.active]
        budget = bucket.profile.budget_bytes
        if budget is None:
            return list(SpoolPriority)
        self._refill(bucket)
        allowed = list(ALWAYS_SENT)
        if bucket.level > 0:
            allowed.append(SpoolPriority.TELEMETRY_HIGH)
        if bucket.level > budget * (1.0 - bucket.profile.low_priority_share):
            allowed.append(SpoolPriority.TELEMETRY_LOW)
        return allowed

    def remaining(self) -> int | None:
        """Bytes left in the active link's bucket now, or None when it is unmetered."""
        bucket = self._buckets[self.active]
        if bucket.profile.budget_bytes is None:
            return None
        self._refill(bucket)
        return max(0, int(bucket.level))

    def spend(self, nbytes: int) -> None:
        """Take ``nbytes`` sent on the active link from its bucket (it may go negative)."""
        bucket = self._buckets[self.active]
        self._refill(bucket)
        bucket.sent_bytes += nbytes
        if bucket.profile.budget_bytes is not None:
            bucket.level -= nbytes

    def summary(self) -> dict[str, object]:
        """JSON-ready figures for health and the reported state."""
        links: dict[str, object] = {}
        for name, bucket in self._buckets.items():
            self._refill(bucket)
            links[name] = {
                "budget_bytes": bucket.profile.budget_bytes,
                "remaining_bytes": None
                if bucket.profile.budget_bytes is None
                else max(0, int(bucket.level)),
                "sent_bytes": bucket.sent_bytes,
            }
        held = [p.name.lower() for p in SpoolPriority if p not in self.allowed()]
        return {"active": self.active, "held_back": held, "links": links}
