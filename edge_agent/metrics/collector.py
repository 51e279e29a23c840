"""The Prometheus collector: the runtime's and the modules' samples, read at scrape time.

It reads the last health snapshot the supervisor published (a reference swapped whole on
the event loop, read whole here; no lock, nothing on any hot path) and asks each module's
class to turn its own health details into samples. A module whose ``health_metrics`` raises
costs its own samples only; the failure is counted in ``edge_agent_metrics_errors_total``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge_agent.metrics.runtime import runtime_samples
from edge_agent.metrics.samples import COUNTER, GAUGE, PREFIX, Sample, table
from edge_agent.metrics.view import MetricsView


class AgentCollector(Collector):
    """Turns the latest :class:`MetricsView` from ``source`` into metric families."""

    def __init__(
        self, source: Callable[[], MetricsView | None], clock: Callable[[], float] = time.time
    ) -> None:
        self._source = source
        self._clock = clock
        self._errors: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        """Every family, built fresh for this scrape."""
        view = self._source()
        samples: list[Sample] = []
        if view is not None:
            samples.extend(runtime_samples(view.snapshot, self._clock()))
            modules = view.snapshot.get("modules", {})
            for name, metrics in view.module_metrics.items():
                details = table(table(modules).get(name)).get("details")
                try:
                    for sample in metrics(table(details)):
                        samples.append(
                            Sample(
                                sample.name,
                                sample.value,
                                sample.kind,
                                sample.help,
                                {**sample.labels, "module": name},
                                sample.family,
                            )
                        )
                except Exception:  # one module's bad mapping never breaks the endpoint
                    self._errors[name] = self._errors.get(name, 0) + 1
        errors = CounterMetricFamily(
            PREFIX + "metrics_errors",
            "Scrapes in which a module's health_metrics raised.",
            labels=["module"],
        )
        for name, count in sorted(self._errors.items()):
            errors.add_metric([name], count)
        yield from families(samples)
        yield errors


def families(samples: Iterable[Sample]) -> Iterator[Metric]:
    """Group ``samples`` into Prometheus metric families (the first sample's help wins)."""
    grouped: dict[str, Metric] = {}
    for sample in samples:
        name = sample.family_name
        family = grouped.get(name)
        if family is None:
            if sample.kind == COUNTER:
                family = CounterMetricFamily(name, sample.help or name)
            elif sample.kind == GAUGE:
                family = GaugeMetricFamily(name, sample.help or name)
            else:  # summary or histogram: its samples come whole from the module
                family = Metric(name, sample.help or name, sample.kind)
            grouped[name] = family
        elif family.type != sample.kind:
            continue  # a name reused with another kind: keep the first
        full = PREFIX + sample.name
        if sample.kind == COUNTER and not full.endswith("_total"):
            full += "_total"
        family.add_sample(full, dict(sample.labels), sample.value)
    yield from grouped.values()
