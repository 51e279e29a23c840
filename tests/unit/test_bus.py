"""The in-process bus: bounded subscriptions, overflow policies, priorities, request/reply."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.bus import (
    Bus,
    Message,
    NoResponder,
    OverflowPolicy,
    Priority,
    RequestFailed,
    RequestTimeout,
    Subscription,
    SubscriptionClosed,
    TopicError,
)
from fixtures.waiting import wait_until


@pytest.fixture
async def bus() -> AsyncIterator[Bus]:
    bus = Bus()
    yield bus
    await bus.close()


async def let_others_run(turns: int = 20) -> None:
    """Give every ready task several turns (to show something does *not* happen)."""
    for _ in range(turns):
        await asyncio.sleep(0)


def drain(subscription: Subscription) -> list[object]:
    payloads = []
    while (message := subscription.get_nowait()) is not None:
        payloads.append(message.payload)
    return payloads


def stats_of(bus: Bus, name: str) -> dict[str, object]:
    [found] = [dataclasses.asdict(s) for s in bus.stats() if s.name == name]
    return found


# -- overflow policies -----------------------------------------------------------------------


async def test_drop_oldest_keeps_the_newest_messages(bus: Bus) -> None:
    sub = bus.subscribe("can/raw", maxsize=2, overflow=OverflowPolicy.DROP_OLDEST, name="s")
    for n in range(1, 6):
        assert await bus.publish("can/raw", n) == 1
    assert drain(sub) == [4, 5]
    assert stats_of(bus, "s") == {
        "name": "s",
        "topic_filter": "can/raw",
        "maxsize": 2,
        "overflow": "drop_oldest",
        "queued": 0,
        "delivered": 2,
        "dropped": 3,
        "handler_errors": 0,
    }


async def test_drop_newest_keeps_the_oldest_messages(bus: Bus) -> None:
    sub = bus.subscribe("can/raw", maxsize=2, overflow=OverflowPolicy.DROP_NEWEST, name="s")
    for n in range(1, 6):
        await bus.publish("can/raw", n)
    assert sub.qsize() == 2
    assert drain(sub) == [1, 2]
    assert (sub.delivered, sub.dropped) == (2, 3)


async def test_block_makes_publish_wait_until_there_is_room(bus: Bus) -> None:
    sub = bus.subscribe("ota/status", maxsize=1, overflow=OverflowPolicy.BLOCK, name="s")
    await bus.publish("ota/status", "first")
    second = asyncio.create_task(bus.publish("ota/status", "second"))
    await let_others_run()
    assert not second.done(), "publish must wait while the BLOCK queue is full"
    assert sub.qsize() == 1
    assert (await sub.get()).payload == "first"
    assert await asyncio.wait_for(second, 5) == 1
    assert (await sub.get()).payload == "second"
    assert sub.dropped == 0
    assert sub.delivered == 2


async def test_several_blocked_publishers_all_get_through_in_turn(bus: Bus) -> None:
    sub = bus.subscribe("x", maxsize=1, overflow=OverflowPolicy.BLOCK)
    await bus.publish("x", 0)
    publishers = [asyncio.create_task(bus.publish("x", n)) for n in range(1, 6)]
    received = []
    while len(received) < 6:
        received.append((await asyncio.wait_for(sub.get(), 5)).payload)
    await asyncio.wait_for(asyncio.gather(*publishers), 5)
    assert sorted(received) == list(range(6))
    assert sub.dropped == 0


async def test_blocked_publish_ends_when_the_subscription_goes_away(bus: Bus) -> None:
    sub = bus.subscribe("x", maxsize=1, overflow=OverflowPolicy.BLOCK)
    await bus.publish("x", 1)
    blocked = asyncio.create_task(bus.publish("x", 2))
    await let_others_run()
    assert not blocked.done()
    bus.unsubscribe(sub)
    assert await asyncio.wait_for(blocked, 5) == 1


async def test_publish_nowait_never_waits_and_counts_the_drop_on_a_full_block_queue(
    bus: Bus,
) -> None:
    sub = bus.subscribe("x", maxsize=1, overflow=OverflowPolicy.BLOCK)
    assert bus.publish_nowait("x", 1) == 1
    assert bus.publish_nowait("x", 2) == 1
    assert bus.publish_nowait("x", 3) == 1
    assert drain(sub) == [1]
    assert sub.dropped == 2


@given(
    maxsize=st.integers(1, 5),
    policy=st.sampled_from([OverflowPolicy.DROP_OLDEST, OverflowPolicy.DROP_NEWEST]),
    steps=st.lists(st.sampled_from(["bulk", "control", "get"]), max_size=60),
)
def test_drop_policies_stay_bounded_and_account_for_every_message(
    maxsize: int, policy: OverflowPolicy, steps: list[str]
) -> None:
    """Whatever the traffic: each lane holds at most maxsize, and nothing is lost uncounted."""
    sub = Subscription("t", maxsize, policy, "prop")
    published = 0
    taken: list[Message] = []
    for step in steps:
        if step == "get":
            message = sub.get_nowait()
            if message is not None:
                taken.append(message)
        else:
            priority = Priority.CONTROL if step == "control" else Priority.BULK
            assert sub.offer(Message("t", published, priority))
            published += 1
        assert sub.qsize() <= 2 * maxsize
    assert sub.delivered == len(taken)
    assert sub.delivered + sub.dropped + sub.qsize() == published
    # Within a lane, order is always kept.
    for lane in (Priority.CONTROL, Priority.BULK):
        numbers = [m.payload for m in taken if m.priority is lane]
        assert numbers == sorted(numbers)


# -- priorities ------------------------------------------------------------------------------


async def test_control_messages_are_delivered_before_bulk(bus: Bus) -> None:
    sub = bus.subscribe("#")
    await bus.publish("telemetry/a", "bulk-1")
    await bus.publish("telemetry/b", "bulk-2")
    await bus.publish("commands/stop", "control-1", priority=Priority.CONTROL)
    await bus.publish("telemetry/c", "bulk-3")
    await bus.publish("commands/go", "control-2", priority=Priority.CONTROL)
    assert drain(sub) == ["control-1", "control-2", "bulk-1", "bulk-2", "bulk-3"]


async def test_a_full_bulk_lane_never_costs_a_control_message(bus: Bus) -> None:
    sub = bus.subscribe("x", maxsize=2, overflow=OverflowPolicy.DROP_NEWEST)
    for n in range(10):
        await bus.publish("x", f"bulk-{n}")
    await bus.publish("x", "brake", priority=Priority.CONTROL)
    assert drain(sub) == ["brake", "bulk-0", "bulk-1"]
    assert sub.dropped == 8


# -- listeners -------------------------------------------------------------------------------


async def test_listener_receives_messages_and_counts_them(bus: Bus) -> None:
    seen: list[object] = []

    async def record(message: Message) -> None:
        seen.append(message.payload)

    bus.listen("vehicles/+/events", record, name="events")
    for n in range(3):
        await bus.publish(f"vehicles/v{n}/events", n, sender="test")
    await wait_until(lambda: len(seen) == 3, what="three deliveries")
    assert seen == [0, 1, 2]
    assert stats_of(bus, "events")["delivered"] == 3


async def test_a_raising_handler_breaks_neither_other_handlers_nor_later_messages(
    bus: Bus,
) -> None:
    calm: list[object] = []
    fragile: list[object] = []

    async def fragile_handler(message: Message) -> None:
        fragile.append(message.payload)
        if message.payload == "bad":
            raise RuntimeError("cannot parse")

    async def calm_handler(message: Message) -> None:
        calm.append(message.payload)

    bus.listen("x", fragile_handler, name="fragile")
    bus.listen("x", calm_handler, name="calm")
    for payload in ("ok-1", "bad", "ok-2", "bad", "ok-3"):
        await bus.publish("x", payload)
    await wait_until(
        lambda: len(calm) == 5 and len(fragile) == 5, what="five deliveries to each handler"
    )
    assert fragile == calm == ["ok-1", "bad", "ok-2", "bad", "ok-3"]
    assert stats_of(bus, "fragile")["handler_errors"] == 2
    assert stats_of(bus, "calm")["handler_errors"] == 0
    assert stats_of(bus, "fragile")["delivered"] == 5


async def test_the_callable_returned_by_listen_unsubscribes(bus: Bus) -> None:
    seen: list[object] = []

    async def record(message: Message) -> None:
        seen.append(message.payload)

    stop_listening = bus.listen("x", record, name="gone")
    await bus.publish("x", 1)
    await wait_until(lambda: seen == [1], what="the first delivery")
    stop_listening()
    assert await bus.publish("x", 2) == 0
    assert not [s for s in bus.stats() if s.name == "gone"]
    await let_others_run()
    assert seen == [1]
    stop_listening()  # twice is harmless


async def test_close_ends_listeners_and_iterators() -> None:
    bus = Bus()
    sub = bus.subscribe("x")
    collected: list[object] = []

    async def consume() -> None:
        async for message in sub:
            collected.append(message.payload)

    consumer = asyncio.create_task(consume())

    async def never_mind(message: Message) -> None:
        pass

    bus.listen("x", never_mind)
    await bus.publish("x", 1)
    await wait_until(lambda: collected == [1], what="the collected message")
    await bus.close()
    await asyncio.wait_for(consumer, 5)  # the iteration ended on its own
    assert bus.stats() == []
    await bus.close()  # twice is harmless


async def test_a_closed_subscription_hands_out_what_is_queued_then_raises(bus: Bus) -> None:
    sub = bus.subscribe("x")
    await bus.publish("x", "last words")
    bus.unsubscribe(sub)
    assert sub.closed
    assert (await sub.get()).payload == "last words"
    with pytest.raises(SubscriptionClosed):
        await sub.get()
    assert await bus.publish("x", "unheard") == 0


# -- routing ---------------------------------------------------------------------------------


async def test_route_cache_is_invalidated_on_subscribe_and_unsubscribe(bus: Bus) -> None:
    assert await bus.publish("can/raw/bus0", 1) == 0  # caches "nobody"
    first = bus.subscribe("can/+/bus0")
    assert await bus.publish("can/raw/bus0", 2) == 1
    second = bus.subscribe("can/#")
    assert bus.publish_nowait("can/raw/bus0", 3) == 2
    bus.unsubscribe(first)
    assert await bus.publish("can/raw/bus0", 4) == 1
    assert drain(first) == [2, 3]
    assert drain(second) == [3, 4]


async def test_messages_carry_their_metadata(bus: Bus) -> None:
    sub = bus.subscribe("x")
    await bus.publish("x", {"v": 1}, priority=Priority.CONTROL, sender="can_reader")
    message = await sub.get()
    assert message == Message("x", {"v": 1}, Priority.CONTROL, "can_reader")


async def test_bad_topics_and_filters_are_rejected(bus: Bus) -> None:
    with pytest.raises(TopicError):
        bus.subscribe("a/#/b")
    with pytest.raises(TopicError):
        await bus.publish("a/+", 1)
    with pytest.raises(TopicError):
        bus.publish_nowait("", 1)
    with pytest.raises(ValueError, match="maxsize must be at least 1"):
        Subscription("x", 0, OverflowPolicy.BLOCK, "zero")


async def test_default_maxsize_applies_when_none_is_given() -> None:
    bus = Bus(default_maxsize=3)
    sub = bus.subscribe("x")
    for n in range(5):
        await bus.publish("x", n)
    assert drain(sub) == [2, 3, 4]
    await bus.close()


# -- request / reply -------------------------------------------------------------------------


async def test_request_gets_the_responders_answer(bus: Bus) -> None:
    async def double(message: Message) -> int:
        return int(message.payload) * 2

    bus.serve("commands/double", double)
    reply = await bus.request("commands/double", 21, timeout=5)
    assert reply.payload == 42
    assert reply.headers == {"status": "ok"}
    assert reply.priority is Priority.CONTROL
    assert reply.correlation_id
    # The private reply inbox is gone afterwards.
    assert not [s for s in bus.stats() if s.name.startswith("reply:")]


async def test_concurrent_requests_get_their_own_replies(bus: Bus) -> None:
    async def echo(message: Message) -> object:
        await asyncio.sleep(0)
        return message.payload

    bus.serve("commands/echo", echo)
    replies = await asyncio.gather(*(bus.request("commands/echo", n, timeout=5) for n in range(20)))
    assert [reply.payload for reply in replies] == list(range(20))


async def test_a_raising_responder_fails_the_request_and_keeps_serving(bus: Bus) -> None:
    async def picky(message: Message) -> str:
        if message.payload == "bad":
            raise ValueError("unknown signal 'Speed2'")
        return "fine"

    bus.serve("commands/picky", picky)
    with pytest.raises(RequestFailed, match=r"ValueError: unknown signal 'Speed2'"):
        await bus.request("commands/picky", "bad", timeout=5)
    assert (await bus.request("commands/picky", "good", timeout=5)).payload == "fine"


async def test_request_without_responder_raises_no_responder(bus: Bus) -> None:
    with pytest.raises(NoResponder, match="commands/nobody"):
        await bus.request("commands/nobody", 1, timeout=5)


async def test_request_that_nobody_answers_times_out(bus: Bus) -> None:
    mute = bus.subscribe("commands/mute")  # receives requests but never replies
    with pytest.raises(RequestTimeout, match=r"within 0\.05 s"):
        await bus.request("commands/mute", 1, timeout=0.05)
    request = mute.get_nowait()
    assert request is not None
    assert request.reply_to is not None
    assert request.priority is Priority.CONTROL
    assert not [s for s in bus.stats() if s.name.startswith("reply:")]


async def test_stop_serving(bus: Bus) -> None:
    async def answer(message: Message) -> str:
        return "yes"

    stop_serving = bus.serve("commands/q", answer)
    assert (await bus.request("commands/q", None, timeout=5)).payload == "yes"
    stop_serving()
    with pytest.raises(NoResponder):
        await bus.request("commands/q", None, timeout=5)
