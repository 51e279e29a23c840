"""The in-process message bus: topics, bounded subscriptions, priorities, request/reply."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from edge_agent.bus.message import Message, OverflowPolicy, Priority
from edge_agent.bus.subscription import Subscription, SubscriptionStats
from edge_agent.bus.topics import topic_matches, validate_filter, validate_topic
from edge_agent.logs import get_logger

Handler = Callable[[Message], Awaitable[None]]
Responder = Callable[[Message], Awaitable[Any]]

DEFAULT_MAXSIZE = 1000
# Routes are cached per concrete topic; a bus fed with unbounded distinct topic names must not
# grow without limit, so the cache is dropped whole when it reaches this many entries.
ROUTE_CACHE_LIMIT = 10_000
REPLY_PREFIX = "_reply/"


class NoResponder(LookupError):
    """A request was published to a topic nobody serves."""


class RequestTimeout(TimeoutError):
    """No reply arrived within the request's time limit."""


class RequestFailed(RuntimeError):
    """The responder raised; the message carries its error text."""


class Bus:
    """Routes published messages to every subscription whose filter matches the topic.

    Every subscription is bounded and has an overflow policy; ``publish`` never grows memory
    beyond the sum of those bounds. Handlers run inside their own error guard, so one failing
    handler is logged and counted and never stops delivery to anyone else.
    """

    def __init__(self, *, default_maxsize: int = DEFAULT_MAXSIZE) -> None:
        self._subscriptions: list[Subscription] = []
        self._routes: dict[str, tuple[Subscription, ...]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._default_maxsize = default_maxsize
        self._names = itertools.count(1)
        self._log = get_logger("edge_agent.bus")
        self._closed = False

    # -- subscribing -------------------------------------------------------------------------

    def subscribe(
        self,
        topic_filter: str,
        *,
        maxsize: int | None = None,
        overflow: OverflowPolicy = OverflowPolicy.DROP_OLDEST,
        name: str = "",
        on_drop: Callable[[Message], None] | None = None,
    ) -> Subscription:
        """Create a bounded subscription; iterate it or call ``get``; ``unsubscribe`` when done."""
        validate_filter(topic_filter)
        subscription = Subscription(
            topic_filter,
            maxsize or self._default_maxsize,
            OverflowPolicy(overflow),
            name or f"sub-{next(self._names)}:{topic_filter}",
            on_drop,
        )
        self._subscriptions.append(subscription)
        self._routes.clear()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop routing to ``subscription`` and close it; safe to call twice."""
        subscription.close()
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
            self._routes.clear()

    def listen(
        self,
        topic_filter: str,
        handler: Handler,
        *,
        maxsize: int | None = None,
        overflow: OverflowPolicy = OverflowPolicy.DROP_OLDEST,
        name: str = "",
        on_drop: Callable[[Message], None] | None = None,
    ) -> Callable[[], None]:
        """Call ``handler`` for each matching message in a task of its own.

        Returns the callable that unsubscribes (and ends the task). A handler that raises is
        logged and counted in the subscription's ``handler_errors``; delivery goes on.
        ``on_drop`` is called (synchronously) with each message the overflow policy drops.
        """
        subscription = self.subscribe(
            topic_filter, maxsize=maxsize, overflow=overflow, name=name, on_drop=on_drop
        )
        task = asyncio.get_running_loop().create_task(
            self._deliver(subscription, handler), name=f"bus.listen[{subscription.name}]"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

        def stop_listening() -> None:
            self.unsubscribe(subscription)
            task.cancel()

        return stop_listening

    async def _deliver(self, subscription: Subscription, handler: Handler) -> None:
        async for message in subscription:
            try:
                await handler(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a bad handler must never break the bus
                subscription.handler_errors += 1
                self._log.warning(
                    "bus handler failed",
                    subscription=subscription.name,
                    topic=message.topic,
                    error=f"{type(error).__name__}: {error}",
                )

    # -- publishing --------------------------------------------------------------------------

    def _route(self, topic: str) -> tuple[Subscription, ...]:
        route = self._routes.get(topic)
        if route is None:
            validate_topic(topic)
            route = tuple(s for s in self._subscriptions if topic_matches(s.topic_filter, topic))
            if len(self._routes) >= ROUTE_CACHE_LIMIT:
                self._routes.clear()
            self._routes[topic] = route
        return route

    async def publish(
        self,
        topic: str,
        payload: Any,
        *,
        priority: Priority = Priority.BULK,
        sender: str = "",
        reply_to: str | None = None,
        correlation_id: str | None = None,
    ) -> int:
        """Deliver to every matching subscription; wait only on full BLOCK subscriptions.

        Returns how many subscriptions the message reached.
        """
        message = Message(topic, payload, priority, sender, reply_to, correlation_id)
        route = self._route(topic)
        for subscription in route:
            while not subscription.offer(message):
                await subscription.wait_for_room()
        return len(route)

    def publish_nowait(
        self,
        topic: str,
        payload: Any,
        *,
        priority: Priority = Priority.BULK,
        sender: str = "",
    ) -> int:
        """Deliver without ever waiting; a full BLOCK subscription counts the message dropped."""
        message = Message(topic, payload, priority, sender)
        route = self._route(topic)
        for subscription in route:
            if not subscription.offer(message):
                subscription.count_blocked_drop()
        return len(route)

    # -- request / reply ---------------------------------------------------------------------

    async def request(
        self,
        topic: str,
        payload: Any,
        *,
        timeout: float,  # noqa: ASYNC109 - the request's own reply deadline
        sender: str = "",
    ) -> Message:
        """Publish a control request and wait up to ``timeout`` seconds for its reply.

        Raises NoResponder when nobody subscribes to ``topic``, RequestTimeout when no reply
        comes in time, RequestFailed when the responder raised.
        """
        correlation_id = uuid.uuid4().hex
        reply_topic = f"{REPLY_PREFIX}{correlation_id}"
        inbox = self.subscribe(reply_topic, maxsize=1, name=f"reply:{topic}")
        try:
            # The deadline covers publishing too: a full BLOCK subscription must not stall it.
            async with asyncio.timeout(timeout):
                reached = await self.publish(
                    topic,
                    payload,
                    priority=Priority.CONTROL,
                    sender=sender,
                    reply_to=reply_topic,
                    correlation_id=correlation_id,
                )
                if reached == 0:
                    raise NoResponder(f"no module serves {topic!r}")
                reply = await inbox.get()
        except TimeoutError:
            raise RequestTimeout(f"no reply on {topic!r} within {timeout:g} s") from None
        finally:
            self.unsubscribe(inbox)
        if reply.headers.get("status") == "error":
            raise RequestFailed(str(reply.payload))
        return reply

    def serve(
        self, topic_filter: str, responder: Responder, *, name: str = ""
    ) -> Callable[[], None]:
        """Answer requests on ``topic_filter`` with ``responder``'s return value.

        A responder that raises sends an error reply (the requester gets RequestFailed).
        Returns the callable that stops serving.
        """

        async def answer(message: Message) -> None:
            if message.reply_to is None:
                return
            headers = {"status": "ok"}
            try:
                result = await responder(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                headers = {"status": "error"}
                result = f"{type(error).__name__}: {error}"
            reply = Message(
                message.reply_to,
                result,
                Priority.CONTROL,
                correlation_id=message.correlation_id,
                headers=headers,
            )
            for subscription in self._route(message.reply_to):
                subscription.offer(reply)

        return self.listen(topic_filter, answer, maxsize=100, name=name or f"serve:{topic_filter}")

    # -- introspection and shutdown ----------------------------------------------------------

    def stats(self) -> list[SubscriptionStats]:
        """Counters of every live subscription."""
        return [s.stats() for s in self._subscriptions]

    async def close(self) -> None:
        """Close every subscription and end listener tasks; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions):
            self.unsubscribe(subscription)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
