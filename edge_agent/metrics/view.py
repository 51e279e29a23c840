"""What a scrape reads, published by the supervisor with each health snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edge_agent.metrics.samples import Sample

ModuleMetrics = Callable[[Mapping[str, Any]], Iterable[Sample]]


@dataclass(frozen=True, slots=True)
class MetricsView:
    """One health snapshot and each module's ``health_metrics``, swapped whole, never mutated."""

    snapshot: Mapping[str, Any]
    module_metrics: Mapping[str, ModuleMetrics]
