"""``edge-agent bench bus``: bus hand-off rate against a bare asyncio.Queue, same run."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from edge_agent.bench.report import machine
from edge_agent.bus import Bus, OverflowPolicy

QUEUE_BOUND = 1024
TOPIC = "vehicle/chassis/speed"


async def _through_bus(messages: int, subscribers: int) -> tuple[float, int]:
    bus = Bus()
    subscriptions = [
        bus.subscribe("vehicle/+/speed", maxsize=QUEUE_BOUND, overflow=OverflowPolicy.BLOCK)
        for _ in range(subscribers)
    ]

    async def consume(index: int) -> None:
        subscription = subscriptions[index]
        for _ in range(messages):
            await subscription.get()

    started = time.perf_counter()
    consumers = [asyncio.create_task(consume(i)) for i in range(subscribers)]
    for value in range(messages):
        await bus.publish(TOPIC, value)
    await asyncio.gather(*consumers)
    elapsed = time.perf_counter() - started
    dropped = sum(s.dropped for s in subscriptions)
    await bus.close()
    return messages / elapsed, dropped


async def _through_queues(messages: int, subscribers: int) -> float:
    queues: list[asyncio.Queue[int]] = [asyncio.Queue(QUEUE_BOUND) for _ in range(subscribers)]

    async def consume(queue: asyncio.Queue[int]) -> None:
        for _ in range(messages):
            await queue.get()

    started = time.perf_counter()
    consumers = [asyncio.create_task(consume(q)) for q in queues]
    for value in range(messages):
        for queue in queues:
            await queue.put(value)
    await asyncio.gather(*consumers)
    return messages / (time.perf_counter() - started)


async def _measure(messages: int, subscribers: int, runs: int) -> dict[str, Any]:
    bus_rates: list[float] = []
    queue_rates: list[float] = []
    drops = 0
    for _ in range(runs):  # interleaved, so drift on the machine hits both alike
        rate, dropped = await _through_bus(messages, subscribers)
        bus_rates.append(rate)
        drops += dropped
        queue_rates.append(await _through_queues(messages, subscribers))
    bus_rate = sorted(bus_rates)[runs // 2]
    queue_rate = sorted(queue_rates)[runs // 2]
    return {
        "bus_msgs_per_s": round(bus_rate),
        "baseline_queue_msgs_per_s": round(queue_rate),
        "ratio": round(bus_rate / queue_rate, 3),
        "drops": drops,
        "subscribers": subscribers,
    }


def run_bus_benchmark(messages: int = 200_000, runs: int = 5) -> dict[str, Any]:
    """Measure 1-to-1 and 1-to-8 hand-off through the bus and through bare queues.

    Rates are messages published per second until every subscriber has received them all;
    the figure given is the median of ``runs`` interleaved runs.
    """
    one = asyncio.run(_measure(messages, 1, runs))
    fan_out = asyncio.run(_measure(messages // 4, 8, runs))
    return {
        "bus_msgs_per_s": one["bus_msgs_per_s"],
        "baseline_queue_msgs_per_s": one["baseline_queue_msgs_per_s"],
        "ratio": one["ratio"],
        "drops": one["drops"],
        "fan_out_8": fan_out,
        "messages": messages,
        "runs": runs,
        "machine": machine(),
    }


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench bus``."""
    return run_bus_benchmark(messages=args.messages or 200_000, runs=args.runs or 5)
