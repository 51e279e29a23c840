"""``edge-agent bench all``: every installed benchmark in one run, one JSON object out.

Each benchmark runs with its defaults (the per-benchmark options of the command line are
ignored here); one that fails, or fails to import, is reported with its error and the
others still run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from typing import Any

from edge_agent.bench.registry import (
    BenchmarkEntry,
    BenchmarkLoadError,
    installed_benchmarks,
    load_benchmark,
)
from edge_agent.bench.report import machine


def defaults() -> argparse.Namespace:
    """The arguments every benchmark gets under ``all``: its own defaults, JSON out."""
    return argparse.Namespace(
        json=True,
        messages=None,
        runs=None,
        seconds=None,
        log=None,
        dbc=None,
        config=None,
        hours_per_day=None,
    )


def run_every(benchmarks: Mapping[str, BenchmarkEntry]) -> dict[str, Any]:
    """Run ``benchmarks`` in name order; collect results, errors and durations."""
    results: dict[str, Any] = {}
    for name, entry in sorted(benchmarks.items()):
        started = time.monotonic()
        try:
            result = load_benchmark(entry).run(defaults())
        except BenchmarkLoadError as error:
            result = {"error": str(error)}
        except Exception as error:  # one broken benchmark must not hide the others
            result = {"error": f"{type(error).__name__}: {error}"}
        result["duration_s"] = round(time.monotonic() - started, 1)
        results[name] = result
    return {"benchmarks": results, "machine": machine(), "started": time.time()}


def bench_all() -> dict[str, Any]:
    """Run every installed benchmark (``edge-agent bench all``)."""
    return run_every(installed_benchmarks())
