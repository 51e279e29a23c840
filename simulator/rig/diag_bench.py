"""``edge-agent bench diag``: the bus share diagnostics take, and the fast path beside them.

Two phases in one run, in one network namespace (python-can ``udp_multicast``, as
``edge-agent bench fastpath`` does), each with a fresh agent whose fast path decides on radar
frames from the radar sender: ``without`` (fast path only) and ``with`` (the diagnostics
module on the same channel, asking for PIDs as fast as its pacer lets it and for DTCs every
second from the simulated engine and brake ECUs, served by ``edge-agent-sim ecus`` in the
namespace, in both phases). Reported: the fast path's latency percentiles in both, and the bus
share the diagnostics module measured for itself against its stated limit. Needs root
(network namespaces).
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from edge_agent.bench.report import machine
from edge_agent.simulator.rig.agent import helper
from edge_agent.simulator.rig.fastpath_bench import OFF_FAST_PATH_CPU, run_phase
from edge_agent.simulator.rig.netns import CHANNEL, multicast_namespace

BITRATE = 500_000
SHARE = 0.05
RADAR_RATE_HZ = 200.0


def diagnostics_module() -> dict[str, Any]:
    """The diagnostics module's table for the ``with`` phase: reads as often as pacing lets."""
    return {
        "config": {
            "interface": "udp_multicast",
            "channel": CHANNEL,
            "bitrate": BITRATE,
            "bus_share": SHARE,
            # Asks far more often than 5 % allows, so the pacer is what limits it.
            "signal_interval_s": 0.01,
            "dtc_interval_s": 1.0,
            "pids": ["engine_speed", "coolant_temperature", "control_module_voltage"],
        }
    }


@contextmanager
def simulated_ecus(namespace: str) -> Iterator[None]:
    """The simulated engine and brake ECUs (one DTC each) on the bench channel."""
    command = helper(
        namespace,
        "edge_agent.simulator.cli",
        "ecus",
        "--interface",
        "udp_multicast",
        "--channel",
        CHANNEL,
        "--dtc",
        "P0562",
        "--dtc",
        "U0235",
        prefix=OFF_FAST_PATH_CPU,
    )
    ecus = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert ecus.stdout is not None
        ecus.stdout.readline()  # "serving ECUs ...": they answer from here on
        yield
    finally:
        ecus.terminate()
        ecus.wait(timeout=10)


def run_diag_benchmark(seconds: float) -> dict[str, Any]:
    """Both phases; the ratio is the fast path's p99 with diagnostics over without."""
    keys = ("p50_ms", "p99_ms", "p999_ms", "max_ms", "decisions")
    with multicast_namespace("ea-diag") as namespace:

        def phase(extra: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
            return run_phase(
                namespace,
                isolation="process",
                load=False,
                seconds=seconds,
                rate=RADAR_RATE_HZ,
                load_rate=0.0,
                extra_modules=extra,
            )

        # The simulated ECUs (test equipment, on the equipment's CPU) listen in both phases:
        # alone, with no diagnostic frame on the bus, they raised the fast path's p99 from
        # about 0.8 to 1.2 ms on this bench's udp_multicast medium (docs/diagnostics.md), which
        # a "without" phase lacking them would have charged to the diagnostics module.
        with simulated_ecus(namespace):
            without = phase(None)
            beside = phase({"diagnostics": diagnostics_module()})
    diag = beside["module_details"].get("diagnostics", {})
    ratio = None
    if without["p99_ms"] and beside["p99_ms"]:
        ratio = round(beside["p99_ms"] / without["p99_ms"], 3)
    return {
        "fast_path_without_diagnostics": {k: without[k] for k in keys},
        "fast_path_with_diagnostics": {k: beside[k] for k in keys},
        "ratio_p99": ratio,
        "diagnostics_bus_share": diag.get("bus_share"),
        "diagnostics_bus_share_limit": SHARE,
        "diagnostics_counters": diag.get("counters"),
        "bitrate": BITRATE,
        "radar_rate_hz": RADAR_RATE_HZ,
        "seconds_per_phase": seconds,
        "machine": machine(),
    }


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench diag``."""
    return run_diag_benchmark(seconds=args.seconds or 15.0)


def render_text(result: dict[str, Any]) -> str:
    """The figures as lines a person reads."""
    without = result["fast_path_without_diagnostics"]
    beside = result["fast_path_with_diagnostics"]
    share = result["diagnostics_bus_share"]
    share_text = "n/a" if share is None else f"{share * 100:.2f} %"
    return "\n".join(
        [
            f"diagnostics bus share {share_text} "
            f"(limit {result['diagnostics_bus_share_limit'] * 100:g} %)",
            f"fast path p99 without diagnostics {without['p99_ms']} ms, "
            f"with {beside['p99_ms']} ms (ratio {result['ratio_p99']})",
            f"counters {result['diagnostics_counters']}",
        ]
    )
