"""Prometheus metrics: what a module contributes (:class:`Sample`) and the agent's endpoint.

A module says what its health details mean as metrics by overriding
``Module.health_metrics(details)``, a pure function from its latest health details to
:class:`Sample` values; the runtime adds its own (modules, bus queues, spool) and serves all
of them at ``[metrics] listen`` (docs/metrics.md). Nothing is counted on a hot path: every
value is read at scrape time from the last health snapshot the supervisor published.
"""

from __future__ import annotations

from edge_agent.metrics.samples import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    SUMMARY,
    Sample,
    counter,
    gauge,
    state_set,
    table,
)

__all__ = [
    "COUNTER",
    "GAUGE",
    "HISTOGRAM",
    "SUMMARY",
    "Sample",
    "counter",
    "gauge",
    "state_set",
    "table",
]
