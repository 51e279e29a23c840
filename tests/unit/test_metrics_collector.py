"""The metrics collector: Prometheus names and types from health details, whatever they hold.

Health details are free-form JSON a module writes; the mapping of each module must turn any
of them into valid exposition text or nothing, never an exception (hypothesis over JSON
values shaped like the real details, structural seeds from a real snapshot's keys).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.metrics import Sample
from edge_agent.metrics.collector import AgentCollector
from edge_agent.metrics.view import MetricsView
from edge_agent.modules.can_reader.metrics import can_reader_metrics
from edge_agent.modules.cloud_link.metrics import cloud_link_metrics
from edge_agent.modules.fast_path.latency import HISTOGRAM_BOUNDS_S, LatencyWindow
from edge_agent.modules.fast_path.metrics import fast_path_metrics
from edge_agent.modules.ota.metrics import ota_metrics

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = {
    "can-reader": can_reader_metrics,
    "fast-path": fast_path_metrics,
    "cloud-link": cloud_link_metrics,
    "ota": ota_metrics,
}

SNAPSHOT: dict[str, Any] = {
    "agent": {
        "version": "1.2.3",
        "vehicle_id": "car",
        "ready": True,
        "loop_lag_ms": 2.5,
        "updated_at": 1000.0,
    },
    "modules": {
        "can-reader": {
            "state": "running",
            "ok": True,
            "restarts": 1,
            "failures": 0,
            "details": {
                "buses": {
                    "vehicle": {
                        "state": "up",
                        "frames": 10,
                        "decoded": 9,
                        "error_frames": 0,
                        "decode_failures": 0,
                        "drops": 1,
                        "pending": 3,
                    }
                }
            },
        },
        "fast-path": {
            "state": "running",
            "ok": True,
            "restarts": 0,
            "failures": 0,
            "details": {
                "decisions": 5,
                "fault": "no radar data yet",
                "latency_ms": {
                    "count": 5,
                    "p50_ms": 0.4,
                    "p99_ms": 1.5,
                    "p999_ms": 2.0,
                    "max_ms": 2.5,
                },
                "latency_budget_ms": 10.0,
                "latency_histogram": {
                    "bounds_s": [0.001, 0.002, 0.005],
                    "counts": [1, 3, 0, 1],
                    "sum_s": 0.0125,
                },
            },
        },
        "cloud-link": {
            "state": "running",
            "ok": True,
            "restarts": 0,
            "failures": 0,
            "details": {
                "link_online": True,
                "link": {
                    "state": "online",
                    "connects": 2,
                    "links": {
                        "cellular": {
                            "budget_bytes": 1000,
                            "remaining_bytes": 400,
                            "sent_bytes": 600,
                        }
                    },
                },
            },
        },
        "ota": {
            "state": "running",
            "ok": True,
            "restarts": 0,
            "failures": 0,
            "details": {"ota": {"phase": "downloading", "progress": {"bytes": 5, "total": 10}}},
        },
    },
    "bus": [
        {
            "name": "telemetry.decoded",
            "topic_filter": "can/+/decoded/#",
            "maxsize": 20000,
            "queued": 12,
            "delivered": 100,
            "dropped": 4,
            "handler_errors": 0,
        }
    ],
    "spool": {
        "max_bytes": 1 << 20,
        "storage": "disk",
        "degraded": False,
        "by_priority": {"events": {"records": 2, "bytes": 300, "appended": 5, "acked": 3}},
    },
}


def scrape(view: MetricsView | None, now: float = 1001.0) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(lambda: view, clock=lambda: now))
    return generate_latest(registry).decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_snapshot_becomes_named_typed_families() -> None:
    text = scrape(MetricsView(SNAPSHOT, MAPPINGS))
    got = samples(text)
    assert (
        got[
            (
                "edge_agent_can_frames_total",
                frozenset({("bus", "vehicle"), ("module", "can-reader")}),
            )
        ]
        == 10
    )
    assert (
        got[
            (
                "edge_agent_can_pending_frames",
                frozenset({("bus", "vehicle"), ("module", "can-reader")}),
            )
        ]
        == 3
    )
    assert (
        got[
            (
                "edge_agent_fast_path_decision_latency_recent_seconds",
                frozenset({("quantile", "0.99"), ("module", "fast-path")}),
            )
        ]
        == 0.0015
    )
    assert (
        got[
            (
                "edge_agent_fast_path_decision_latency_recent_seconds_count",
                frozenset({("module", "fast-path")}),
            )
        ]
        == 5
    )
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in got.items()
        if name == "edge_agent_fast_path_decision_latency_seconds_bucket"
    }
    assert buckets == {"0.001": 1, "0.002": 4, "0.005": 4, "+Inf": 5}  # cumulative
    latency = "edge_agent_fast_path_decision_latency_seconds"
    assert got[(f"{latency}_count", frozenset({("module", "fast-path")}))] == 5
    assert got[(f"{latency}_sum", frozenset({("module", "fast-path")}))] == 0.0125
    assert got[("edge_agent_fast_path_fault", frozenset({("module", "fast-path")}))] == 1
    assert (
        got[
            (
                "edge_agent_link_budget_remaining_bytes",
                frozenset({("link", "cellular"), ("module", "cloud-link")}),
            )
        ]
        == 400
    )
    assert (
        got[("edge_agent_ota_phase", frozenset({("phase", "downloading"), ("module", "ota")}))] == 1
    )
    assert (
        got[
            (
                "edge_agent_bus_queue_depth",
                frozenset({("subscription", "telemetry.decoded"), ("topic", "can/+/decoded/#")}),
            )
        ]
        == 12
    )
    assert got[("edge_agent_spool_records", frozenset({("priority", "events")}))] == 2
    assert got[("edge_agent_spool_acked_records_total", frozenset({("priority", "events")}))] == 3
    assert got[("edge_agent_health_snapshot_age_seconds", frozenset())] == 1.0
    assert got[("edge_agent_loop_lag_seconds", frozenset())] == 0.0025
    assert "# TYPE edge_agent_fast_path_decision_latency_seconds histogram" in text
    assert "# TYPE edge_agent_fast_path_decision_latency_recent_seconds summary" in text
    assert "# TYPE edge_agent_can_frames_total counter" in text


def test_every_metric_the_grafana_dashboard_names_exists() -> None:
    dashboard = (ROOT / "deploy" / "grafana" / "edge-agent-dashboard.json").read_text()
    named = set(re.findall(r"edge_agent_[a-z_]+", dashboard))
    served = {
        sample.name
        for family in text_string_to_metric_families(scrape(MetricsView(SNAPSHOT, MAPPINGS)))
        for sample in family.samples
    }
    assert named
    assert named <= served, named - served


def test_no_snapshot_yet_is_an_empty_but_valid_answer() -> None:
    assert "edge_agent_metrics_errors" in scrape(None)


def test_a_module_mapping_that_raises_costs_only_its_own_samples() -> None:
    def broken(details: Mapping[str, Any]) -> list[Sample]:
        raise KeyError("oops")

    text = scrape(MetricsView(SNAPSHOT, {**MAPPINGS, "ota": broken}))
    got = samples(text)
    assert got[("edge_agent_metrics_errors_total", frozenset({("module", "ota")}))] == 1
    assert (
        "edge_agent_can_frames_total",
        frozenset({("bus", "vehicle"), ("module", "can-reader")}),
    ) in got


json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "state",
                    "frames",
                    "buses",
                    "vehicle",
                    "latency_ms",
                    "latency_histogram",
                    "bounds_s",
                    "counts",
                    "sum_s",
                    "p99_ms",
                    "count",
                    "link",
                    "links",
                    "sent_bytes",
                    "ota",
                    "phase",
                    "progress",
                    "bytes",
                    "uplink",
                    "backlog",
                    "fault",
                    "decisions",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


TOP_DETAILS = (
    "buses",
    "latency_ms",
    "latency_histogram",
    "link",
    "ota",
    "uplink",
    "backlog",
    "fault",
)


@settings(max_examples=200, deadline=None)
@given(
    details=st.dictionaries(st.text(max_size=10), json_value, max_size=6)
    | st.dictionaries(
        st.sampled_from(TOP_DETAILS),
        json_value,
        max_size=6,
    )
)
def test_any_details_give_valid_exposition_or_nothing(details: dict[str, Any]) -> None:
    snapshot = {"modules": {name: {"details": details} for name in MAPPINGS}}
    text = scrape(MetricsView(snapshot, MAPPINGS))
    families = list(text_string_to_metric_families(text))
    assert all(family.name.startswith("edge_agent_") for family in families)
    errors = [s for f in families for s in f.samples if s.name == "edge_agent_metrics_errors_total"]
    assert errors == []  # no mapping raised


def test_a_latency_window_buckets_every_latency_since_start_by_its_upper_bound() -> None:
    window = LatencyWindow(window_s=1.0)
    for now, latency in ((0.0, 0.0005), (0.0, 0.0007), (0.0, 0.003), (5.0, 2.0)):
        window.record(now, latency)
    assert window.summary(5.0).count == 1  # the window forgot the first three
    histogram = window.histogram()
    assert histogram.bounds_s == HISTOGRAM_BOUNDS_S
    assert histogram.counts[0] == 1  # 0.5 ms: le 0.0005 (a bound is inclusive)
    assert histogram.counts[1] == 1  # 0.7 ms
    assert histogram.counts[HISTOGRAM_BOUNDS_S.index(0.005)] == 1
    assert histogram.counts[-1] == 1  # slower than every bound: only +Inf
    assert sum(histogram.counts) == 4
    assert histogram.sum_s == 0.0005 + 0.0007 + 0.003 + 2.0


@settings(max_examples=100, deadline=None)
@given(
    bounds=st.lists(st.floats(-1e9, 1e9), max_size=4),
    counts=st.lists(st.integers(-2, 10**12), max_size=6),
    total=st.floats(allow_nan=False) | st.none() | st.booleans(),
)
def test_any_reported_buckets_give_a_valid_histogram_or_none(
    bounds: list[float], counts: list[int], total: float | None
) -> None:
    details = {"latency_histogram": {"bounds_s": bounds, "counts": counts, "sum_s": total}}
    snapshot = {"modules": {"fast-path": {"details": details}}}
    text = scrape(MetricsView(snapshot, {"fast-path": fast_path_metrics}))
    histograms = [f for f in text_string_to_metric_families(text) if f.type == "histogram"]
    for family in histograms:
        cumulative = [s.value for s in family.samples if s.name.endswith("_bucket")]
        assert cumulative == sorted(cumulative)
        assert cumulative[-1] == sum(counts)
