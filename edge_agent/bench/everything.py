"""``edge-agent bench all``: every registered benchmark in one run, one JSON object out.

Each benchmark runs with its defaults (the per-benchmark options of the command line are
ignored here); one that fails is reported with its error and the others still run.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from edge_agent.bench.registry import BENCHMARKS, run_benchmark
from edge_agent.bench.report import machine


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run every benchmark but ``all`` itself; collect results, errors and durations."""
    results: dict[str, Any] = {}
    defaults = argparse.Namespace(
        json=True, messages=None, runs=None, seconds=None, log=None, dbc=None, config=None
    )
    for name in sorted(BENCHMARKS):
        if name == "all":
            continue
        started = time.monotonic()
        try:
            result = run_benchmark(name, defaults)
        except Exception as error:  # one broken benchmark must not hide the others
            result = {"error": f"{type(error).__name__}: {error}"}
        result["duration_s"] = round(time.monotonic() - started, 1)
        results[name] = result
    return {"benchmarks": results, "machine": machine(), "started": time.time()}
