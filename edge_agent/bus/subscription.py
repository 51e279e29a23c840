"""A bounded, two-lane (control before bulk) subscription queue with overflow counters."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from edge_agent.bus.message import Message, OverflowPolicy, Priority


class SubscriptionClosed(Exception):
    """Raised by :meth:`Subscription.get` once the subscription is closed and drained."""


@dataclass(slots=True)
class SubscriptionStats:
    """Counters of one subscription, as reported in health and ``edge-agent status``."""

    name: str
    topic_filter: str
    maxsize: int
    overflow: str
    queued: int
    delivered: int
    dropped: int
    handler_errors: int


class Subscription:
    """Messages matching one topic filter, queued for one consumer.

    Each priority lane holds at most ``maxsize`` messages; what happens beyond that is
    ``overflow``. ``get`` always hands out control messages before bulk ones.
    """

    __slots__ = (
        "_closed",
        "_lanes",
        "_room",
        "_waiter",
        "delivered",
        "dropped",
        "handler_errors",
        "maxsize",
        "name",
        "on_drop",
        "overflow",
        "topic_filter",
    )

    def __init__(
        self,
        topic_filter: str,
        maxsize: int,
        overflow: OverflowPolicy,
        name: str,
        on_drop: Callable[[Message], None] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"subscription {name!r}: maxsize must be at least 1 (got {maxsize})")
        self.topic_filter = topic_filter
        self.maxsize = maxsize
        self.overflow = overflow
        self.name = name
        self.delivered = 0
        self.dropped = 0
        # Told about each message dropped by the overflow policy (e.g. to refuse it to its
        # sender instead of losing it silently); it must not block or raise.
        self.on_drop = on_drop
        self.handler_errors = 0
        self._lanes: tuple[deque[Message], deque[Message]] = (deque(), deque())
        self._waiter: asyncio.Future[None] | None = None
        self._room: asyncio.Event | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether the subscription no longer receives messages."""
        return self._closed

    def qsize(self) -> int:
        """Messages currently queued in both lanes."""
        return len(self._lanes[0]) + len(self._lanes[1])

    def offer(self, message: Message) -> bool:
        """Queue ``message`` without waiting; return False only when a BLOCK lane is full."""
        if self._closed:
            return True
        lane = self._lanes[0 if message.priority is Priority.CONTROL else 1]
        if len(lane) >= self.maxsize:
            if self.overflow is OverflowPolicy.DROP_OLDEST:
                self._dropped(lane.popleft())
            elif self.overflow is OverflowPolicy.DROP_NEWEST:
                self._dropped(message)
                return True
            else:
                return False
        lane.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def _dropped(self, message: Message) -> None:
        self.dropped += 1
        if self.on_drop is not None:
            self.on_drop(message)

    def count_blocked_drop(self) -> None:
        """Count a message that a non-waiting publisher could not queue on a full BLOCK lane."""
        self.dropped += 1

    async def wait_for_room(self) -> None:
        """Wait until a full lane has had a message taken out (or the subscription closed)."""
        if self._room is None:
            self._room = asyncio.Event()
        self._room.clear()
        await self._room.wait()

    def get_nowait(self) -> Message | None:
        """Return the next message (control first) or None when both lanes are empty."""
        control, bulk = self._lanes
        if control:
            message = control.popleft()
        elif bulk:
            message = bulk.popleft()
        else:
            return None
        self.delivered += 1
        if self._room is not None:
            self._room.set()
        return message

    async def get(self) -> Message:
        """Wait for and return the next message; raise SubscriptionClosed once closed and empty."""
        while True:
            message = self.get_nowait()
            if message is not None:
                return message
            if self._closed:
                raise SubscriptionClosed(self.name)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        """Stop receiving; a waiting ``get`` returns what is queued, then raises."""
        self._closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._room is not None:
            self._room.set()

    def stats(self) -> SubscriptionStats:
        """A snapshot of this subscription's counters."""
        return SubscriptionStats(
            name=self.name,
            topic_filter=self.topic_filter,
            maxsize=self.maxsize,
            overflow=self.overflow.value,
            queued=self.qsize(),
            delivered=self.delivered,
            dropped=self.dropped,
            handler_errors=self.handler_errors,
        )

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            try:
                yield await self.get()
            except SubscriptionClosed:
                return
