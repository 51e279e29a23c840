"""The message envelope carried by the in-process bus, and its priorities and policies."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Priority(enum.IntEnum):
    """Delivery class: control traffic is always handed out before bulk traffic."""

    CONTROL = 0
    BULK = 1


class OverflowPolicy(enum.StrEnum):
    """What a full subscription queue does with one more message.

    ``block``: the publisher waits for room (``publish_nowait`` counts the message dropped
    instead, since it must not wait). ``drop_oldest``: the oldest queued message goes.
    ``drop_newest``: the new message goes.
    """

    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


@dataclass(slots=True, frozen=True)
class Message:
    """One message on the bus: the topic, a payload and routing metadata.

    ``reply_to`` and ``correlation_id`` are set on requests (see ``Bus.request``).
    ``sender`` names the module that published it (empty for the runtime itself).
    """

    topic: str
    payload: Any
    priority: Priority = Priority.BULK
    sender: str = ""
    reply_to: str | None = None
    correlation_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
