"""The cloud asks for a signal catalogue: which requests the vehicle answers, and how often.

A back end that meets a v3 batch naming a catalogue it does not have (its database was
restored, the broker lost the retained copy) publishes an empty message on
``vehicles/{vid}/catalog/{hash}/request``; the cloud link hands it to the telemetry module
as ``cloud/in/catalog/{hash}/request``, and the module publishes that catalogue again
(retained, QoS 1) on ``catalog/{hash}``. A request names a catalogue **only by its hash**:
32 lowercase hex digits in the topic, checked here; the payload is never read. A hash the
vehicle does not keep is refused (counted), so a request cannot make the vehicle publish
anything but a catalogue it made itself. Each catalogue is answered at most once per
``interval_s`` (default 30 s), however often it is asked for, so a flood of requests costs
the uplink one catalogue per interval per kept catalogue (at most 16).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REQUEST_TOPIC = "cloud/in/catalog/+/request"
DEFAULT_INTERVAL_S = 30.0
_HASH = re.compile(r"[0-9a-f]{32}")


def requested_hash(topic: str) -> bytes | None:
    """The catalogue hash a request topic names, or None if the topic is not a request."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[:3] != ["cloud", "in", "catalog"] or parts[4] != "request":
        return None
    if _HASH.fullmatch(parts[3]) is None:
        return None
    return bytes.fromhex(parts[3])


@dataclass
class RequestLimiter:
    """Answers each known catalogue at most once per ``interval_s``; counts what it refused.

    ``answered`` maps a hash to when it was last answered; only hashes the vehicle keeps get
    there (the caller checks first), so it holds at most as many entries as the shelf.
    """

    interval_s: float = DEFAULT_INTERVAL_S
    answered: dict[bytes, float] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {"answered": 0, "unknown": 0, "too_soon": 0, "malformed": 0}
    )

    def decide(self, digest: bytes | None, known: bool, now: float) -> bool:
        """Whether to publish the catalogue ``digest`` again now (and count the outcome)."""
        if digest is None:
            self.counts["malformed"] += 1
            return False
        if not known:
            self.counts["unknown"] += 1
            return False
        last = self.answered.get(digest)
        if last is not None and now - last < self.interval_s:
            self.counts["too_soon"] += 1
            return False
        self.answered[digest] = now
        self.counts["answered"] += 1
        return True

    def forget(self, kept: set[bytes]) -> None:
        """Drop the times of catalogues no longer kept (keeps the map bounded by the shelf)."""
        for digest in set(self.answered) - kept:
            del self.answered[digest]
