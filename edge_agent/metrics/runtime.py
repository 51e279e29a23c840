"""The runtime's own metrics, read from a health snapshot: agent, modules, bus queues, spool."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from edge_agent.metrics.samples import Sample, counter, gauge, state_set, table

SPOOL_COUNTERS = ("appended", "acked", "downsampled", "dropped", "expired", "refused")


def runtime_samples(snapshot: Mapping[str, Any], now: float) -> Iterator[Sample]:
    """Every runtime metric in ``snapshot`` (the supervisor's health model); ``now`` wall time."""
    agent = table(snapshot.get("agent"))
    yield from gauge(
        "info",
        1,
        "The running agent: version and vehicle id in labels.",
        version=str(agent.get("version", "")),
        vehicle_id=str(agent.get("vehicle_id", "")),
    )
    yield from gauge("ready", agent.get("ready"), "1 once every required module runs.")
    lag = agent.get("loop_lag_ms")
    if isinstance(lag, int | float):
        yield from gauge("loop_lag_seconds", lag / 1000, "How late the event loop's timer fired.")
    updated = agent.get("updated_at")
    if isinstance(updated, int | float):
        yield from gauge(
            "health_snapshot_age_seconds",
            max(0.0, now - updated),
            "Age of the health snapshot these metrics were read from.",
        )
    for name, module in table(snapshot.get("modules")).items():
        yield from _module(name, table(module))
    bus = snapshot.get("bus")
    for subscription in bus if isinstance(bus, list) else []:
        yield from _subscription(table(subscription))
    spool = snapshot.get("spool")
    if isinstance(spool, Mapping) and spool:
        yield from spool_samples(spool)


def _module(name: str, module: Mapping[str, Any]) -> Iterator[Sample]:
    yield from state_set(
        "module_state", module.get("state"), "Lifecycle state of each module.", "state", module=name
    )
    yield from gauge(
        "module_healthy", module.get("ok"), "1 when the module reports healthy.", module=name
    )
    yield from counter(
        "module_restarts_total", module.get("restarts"), "Restarts of each module.", module=name
    )
    yield from counter(
        "module_failures_total", module.get("failures"), "Failures of each module.", module=name
    )


def _subscription(stats: Mapping[str, Any]) -> Iterator[Sample]:
    label = {
        "subscription": str(stats.get("name", "")),
        "topic": str(stats.get("topic_filter", "")),
    }
    yield from gauge(
        "bus_queue_depth", stats.get("queued"), "Messages waiting in a bus queue.", **label
    )
    yield from gauge("bus_queue_capacity", stats.get("maxsize"), "Bound of a bus queue.", **label)
    yield from counter(
        "bus_delivered_total",
        stats.get("delivered"),
        "Messages delivered to a subscriber.",
        **label,
    )
    yield from counter(
        "bus_dropped_total", stats.get("dropped"), "Messages a full bus queue dropped.", **label
    )
    yield from counter(
        "bus_handler_errors_total", stats.get("handler_errors"), "Handler exceptions.", **label
    )


def spool_samples(spool: Mapping[str, Any]) -> Iterator[Sample]:
    """The spool's records, bytes, state and per-priority counters."""
    yield from gauge("spool_max_bytes", spool.get("max_bytes"), "Byte cap of the spool.")
    yield from gauge("spool_file_bytes", spool.get("file_bytes"), "Size of the spool's files.")
    yield from gauge("spool_degraded", spool.get("degraded"), "1 while the spool is degraded.")
    yield from gauge("spool_disk_full", spool.get("disk_full"), "1 while the disk is full.")
    yield from state_set(
        "spool_storage", spool.get("storage"), "Where the spool keeps records.", "storage"
    )
    for priority, counts in table(spool.get("by_priority")).items():
        if not isinstance(counts, Mapping):
            continue
        yield from gauge(
            "spool_records",
            counts.get("records"),
            "Records waiting in the spool.",
            priority=priority,
        )
        yield from gauge(
            "spool_bytes", counts.get("bytes"), "Bytes waiting in the spool.", priority=priority
        )
        for key in SPOOL_COUNTERS:
            yield from counter(
                f"spool_{key}_records_total",
                counts.get(key),
                f"Spool records {key}, by priority.",
                priority=priority,
            )
