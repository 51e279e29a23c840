"""The benchmarks ``edge-agent bench NAME`` knows, imported only when run."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

# name -> "module:function"; the function takes the parsed arguments and returns the JSON object.
BENCHMARKS: dict[str, str] = {
    "all": "edge_agent.bench.everything:bench_from_args",
    "bus": "edge_agent.bench.bus:bench_from_args",
    "ingest": "edge_agent.bench.ingest:bench_from_args",
    "fastpath": "edge_agent.bench.fastpath:bench_from_args",
    "batch": "edge_agent.bench.batch:bench_from_args",
    "spool": "edge_agent.bench.spool:bench_from_args",
    "drain": "edge_agent.bench.drain:bench_from_args",
    "uplink": "edge_agent.modules.telemetry.uplink_bench:bench_from_args",
}


def run_benchmark(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Import and run benchmark ``name``; return its JSON-ready result."""
    module_name, _, function_name = BENCHMARKS[name].partition(":")
    function: Callable[[argparse.Namespace], dict[str, Any]] = getattr(
        importlib.import_module(module_name), function_name
    )
    return function(args)


def render_benchmark(name: str, result: dict[str, Any]) -> str | None:
    """The human-readable form of ``result``: its module's ``render_text``, if it has one."""
    module_name, _, _ = BENCHMARKS[name].partition(":")
    render: Callable[[dict[str, Any]], str] | None = getattr(
        importlib.import_module(module_name), "render_text", None
    )
    return None if render is None else render(result)
