"""The cloud link's health details as Prometheus metrics: link state, bytes and budget per link."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from edge_agent.metrics import Sample, counter, gauge, state_set, table

UPLINK_COUNTERS = {
    "published": ("link_published_records_total", "Records published and acknowledged."),
    "published_bytes": ("link_published_bytes_total", "Bytes of records published."),
    "refused_by_broker": ("link_refused_records_total", "Publishes the broker refused."),
    "received": ("link_received_messages_total", "Messages received from the cloud."),
    "commands": ("link_commands_total", "Commands received."),
}


def cloud_link_metrics(details: Mapping[str, Any]) -> Iterator[Sample]:
    """Online flag and state, connects, per-link bytes and budget, uplink counts, backlog."""
    yield from gauge("link_online", details.get("link_online"), "1 while the cloud link is online.")
    link = details.get("link")
    if isinstance(link, Mapping):
        yield from state_set("link_state", link.get("state"), "State of the cloud link.", "state")
        yield from counter("link_connects_total", link.get("connects"), "Connections made.")
        for name, usage in table(link.get("links")).items():
            if not isinstance(usage, Mapping):
                continue
            yield from counter(
                "link_sent_bytes_total", usage.get("sent_bytes"), "Bytes sent per link.", link=name
            )
            yield from gauge(
                "link_budget_bytes", usage.get("budget_bytes"), "Byte budget of a link.", link=name
            )
            yield from gauge(
                "link_budget_remaining_bytes",
                usage.get("remaining_bytes"),
                "Bytes left in a link's budget.",
                link=name,
            )
    uplink = details.get("uplink")
    if isinstance(uplink, Mapping):
        for key, (name, help_text) in UPLINK_COUNTERS.items():
            yield from counter(name, uplink.get(key), help_text)
        yield from gauge(
            "link_inflight_records", uplink.get("inflight"), "Publishes awaiting PUBACK."
        )
    backlog = details.get("backlog")
    if isinstance(backlog, Mapping):
        yield from gauge(
            "link_backlog_records", backlog.get("records"), "Records waiting to go up."
        )
        yield from gauge("link_backlog_bytes", backlog.get("bytes"), "Bytes waiting to go up.")
