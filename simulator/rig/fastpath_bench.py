"""``edge-agent bench fastpath``: decision latency idle and under load, in the same run.

Every participant is a separate process on the host, sharing CAN channels through python-can's
``udp_multicast`` inside a network namespace the benchmark creates (and deletes): the vehicle
side sends radar frames, the agent's fast path (in its own process, with its own socket)
decides and sends the brake request, and measures the latency from the radar frame's receive
timestamp to the completed send. Phases, each with a fresh agent:

* ``idle``: the agent runs the fast path only;
* ``loaded``: the agent also ingests a second channel flooded at ``--load-rate`` frames/s and
  runs every other installed module the load profile names (CAN decoding, telemetry, spool);
* ``loaded_in_loop``: the same load, with the fast path moved into the agent's event loop: the
  design the isolation replaces, measured for contrast;
* ``loaded_cpu_starved``: the ``loaded`` phase while one busy-loop process per CPU competes
  for every CPU (the fault matrix's CPU starvation, whose tests check behaviour, not latency).

Needs root (network namespaces). Figures go to docs/benchmarks.md. It lives with the test
equipment it drives (radar sender, traffic generator, broker), so an install without the
simulator does not list it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cantools
import tomli_w

from edge_agent.bench.report import machine
from edge_agent.can.resources import resolve_data_path
from edge_agent.discovery import installed_modules
from edge_agent.simulator.rig.agent import (
    LOAD_CHANNEL,
    LOAD_PORT,
    PYTHON,
    VEHICLE_DBC,
    helper,
    load_traffic,
    radar_sender,
)
from edge_agent.simulator.rig.broker import mosquitto_binary
from edge_agent.simulator.rig.netns import CHANNEL, in_namespace, multicast_namespace

# With two CPUs or more, the agent's process is pinned to CPU 0 and the fast path's to CPU 1,
# as docs/fast-path.md recommends for a vehicle.
PINNED = len(os.sched_getaffinity(0)) >= 2
# Test equipment (the radar sender standing in for the radar ECU, the traffic generator, the
# broker standing in for the cloud) runs off the fast path's CPU, as it would be off the car's.
OFF_FAST_PATH_CPU = ["taskset", "-c", "0"] if PINNED else []
# The traffic generator stands in for CAN hardware, which costs a car's CPU nothing: it runs
# at the lowest priority, and with two CPUs on the agent's CPU (its packets' kernel work runs
# where it sends them), so that it loads the agent, not the CPU the fast path needs.
TRAFFIC_NICE = 19
# Every wait on a helper process guards against a hang, never claims a speed: on a loaded
# machine (load average 8-12) the agent's start and the niced generator's exit took over the
# 30 s these waits were before.
HANG_GUARD_S = 180.0


def _dbc_signals() -> list[str]:
    database: Any = cantools.database.load_file(str(resolve_data_path(VEHICLE_DBC)))
    return sorted({s.name for m in database.messages for s in m.signals})


def load_profile(broker_port: int | None) -> dict[str, dict[str, Any]]:
    """The modules that make up the load, as far as they are installed.

    CAN ingest of the flooded channel (decode and publish every frame), telemetry keeping
    every signal at its native rate plus a hard-braking capture (batch encoding and zstd
    compression, durable spool writes), and the cloud link uploading to a broker in the same
    namespace (when mosquitto is installed).
    """
    installed = installed_modules()
    profile: dict[str, dict[str, Any]] = {}
    if "can-reader" in installed:
        profile["can-reader"] = {
            "config": {
                "buses": [
                    {
                        "name": "powertrain",
                        "interface": "udp_multicast",
                        "channel": LOAD_CHANNEL,
                        "dbc": VEHICLE_DBC,
                        "options": {"port": LOAD_PORT},
                    }
                ]
            }
        }
    if "telemetry" in installed:
        profile["telemetry"] = {
            "config": {
                "batch_max_samples": 20_000,
                "batch_max_age_s": 2.0,
                "streams": [
                    {
                        "name": "everything",
                        "signals": [{"signal": name} for name in _dbc_signals()],
                    }
                ],
                "captures": [
                    {
                        "name": "hard-braking",
                        "stream": "hard-braking",
                        "when": {"signal": "LongitudinalAccel", "op": "<", "value": -4.0},
                        "signals": ["EgoSpeed", "LongitudinalAccel", "BrakePressure"],
                    }
                ],
            }
        }
    if "cloud-link" in installed and broker_port is not None:
        profile["cloud-link"] = {"config": {"host": "127.0.0.1", "port": broker_port, "tls": False}}
    return profile


def write_config(
    path: Path,
    state_dir: Path,
    isolation: str,
    load: bool,
    broker_port: int | None = None,
    *,
    pinned: bool = False,
    extra_modules: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Write the phase's agent.toml; return the names of the load modules enabled.

    ``extra_modules`` (name -> module table) run beside the fast path in every phase that
    passes them: a benchmark of another module measures the fast path with it running.
    """
    agent: dict[str, Any] = {
        "vehicle_id": "bench-1",
        **({"cpu_affinity": [0]} if pinned else {}),
        "state_dir": str(state_dir),
        "log_level": "warning",
        "log_format": "json",
    }
    fast_path = {
        "isolation": isolation,
        "required": True,
        **({"cpu_affinity": [1]} if pinned and isolation == "process" else {}),
        "config": {"can": {"interface": "udp_multicast", "channel": CHANNEL}},
    }
    profile = load_profile(broker_port) if load else {}
    profile.update(extra_modules or {})
    document = {"agent": agent, "modules": {"fast-path": fast_path, **profile}}
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return list(profile)


def _health(state_dir: Path) -> dict[str, Any]:
    try:
        snapshot: dict[str, Any] = json.loads((state_dir / "health.json").read_text())
    except (OSError, ValueError):
        return {}
    return snapshot


def _wait_running(state_dir: Path, agent: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited with status {agent.returncode} during start-up")
        health = _health(state_dir)
        if health.get("agent", {}).get("ready"):
            return
        time.sleep(0.1)
    raise RuntimeError("the agent did not become ready in time")


def run_phase(
    namespace: str,
    *,
    isolation: str,
    load: bool,
    seconds: float,
    rate: float,
    load_rate: float,
    broker_port: int | None = None,
    extra_modules: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One phase with a fresh agent; returns latency percentiles and what ran."""
    with tempfile.TemporaryDirectory(prefix="edge-agent-bench-") as scratch:
        state_dir = Path(scratch) / "state"
        config = Path(scratch) / "agent.toml"
        load_modules = write_config(
            config,
            state_dir,
            isolation,
            load,
            broker_port,
            pinned=PINNED,
            extra_modules=extra_modules,
        )
        log = (Path(scratch) / "agent.log").open("wb")
        agent = subprocess.Popen(
            helper(namespace, "edge_agent", "run", "--config", str(config)),
            stderr=log,
        )
        traffic: subprocess.Popen[bytes] | None = None
        try:
            _wait_running(state_dir, agent, HANG_GUARD_S)
            if load:
                niced = [*OFF_FAST_PATH_CPU, "nice", "-n", str(TRAFFIC_NICE)]
                traffic = subprocess.Popen(
                    load_traffic(namespace, load_rate, seconds + 3, prefix=niced),
                    stdout=subprocess.PIPE,
                )
                time.sleep(2.0)  # let the load reach its rate before measuring
            sender = subprocess.run(
                radar_sender(namespace, seconds, rate, prefix=OFF_FAST_PATH_CPU),
                capture_output=True,
                check=True,
                timeout=seconds + HANG_GUARD_S,
            )
            time.sleep(1.2)  # one health period, so the figures include the last decisions
            health = _health(state_dir)
            traffic_out: dict[str, Any] = {}
            if traffic is not None:
                out, _ = traffic.communicate(timeout=HANG_GUARD_S)
                traffic_out = json.loads(out or b"{}")
        finally:
            for process in (traffic, agent):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            agent.wait(timeout=HANG_GUARD_S)
            log.close()
        modules = health.get("modules", {})
        fast = modules.get("fast-path", {}).get("details", {})
        latency = fast.get("latency_ms", {})
        reader = modules.get("can-reader", {}).get("details", {})
        telemetry = modules.get("telemetry", {}).get("details", {})
        cloud = modules.get("cloud-link", {}).get("details", {})
        return {
            "isolation": isolation,
            "p50_ms": latency.get("p50_ms"),
            "p99_ms": latency.get("p99_ms"),
            "p999_ms": latency.get("p999_ms"),
            "max_ms": latency.get("max_ms"),
            "decisions": latency.get("count"),
            "sender": json.loads(sender.stdout),
            "load_modules": load_modules,
            "load_sent_frames_per_s": traffic_out.get("frames_per_s", 0),
            "load_ingested": reader,
            "load_telemetry": telemetry,
            "load_cloud": cloud,
            "spool": health.get("spool", {}),
            "module_details": {name: m.get("details", {}) for name, m in modules.items()},
        }


@contextmanager
def _cpu_hogs() -> Iterator[None]:
    """One busy-loop process per CPU this process may use, for as long as the block runs."""
    hogs = [
        subprocess.Popen([*PYTHON, "-c", "while True: pass"])
        for _ in range(len(os.sched_getaffinity(0)))
    ]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(timeout=10)


@contextmanager
def _namespace_broker(namespace: str) -> Iterator[int | None]:
    """A plaintext mosquitto on the namespace's loopback for the uploads, if installed."""
    binary = mosquitto_binary()
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="edge-agent-bench-broker-") as scratch:
        port = 18883
        conf = Path(scratch) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        broker = subprocess.Popen(
            in_namespace(namespace, [*OFF_FAST_PATH_CPU, binary, "-c", str(conf)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            yield port if broker.poll() is None else None
        finally:
            broker.terminate()
            broker.wait(timeout=10)


def run_fastpath_benchmark(seconds: float, rate: float, load_rate: float) -> dict[str, Any]:
    """All phases in one namespace; the ratio is loaded p99 over idle p99."""
    with multicast_namespace("ea-bench") as namespace, _namespace_broker(namespace) as port:

        def phase(isolation: str, load: bool) -> dict[str, Any]:
            return run_phase(
                namespace,
                isolation=isolation,
                load=load,
                seconds=seconds,
                rate=rate,
                load_rate=load_rate,
                broker_port=port,
            )

        idle = phase("process", load=False)
        loaded = phase("process", load=True)
        in_loop = phase("in-loop", load=True)
        with _cpu_hogs():
            starved = phase("process", load=True)
    keys = ("p50_ms", "p99_ms", "p999_ms", "max_ms")
    ratio = None
    if idle["p99_ms"] and loaded["p99_ms"]:
        ratio = round(loaded["p99_ms"] / idle["p99_ms"], 3)
    return {
        "idle": {k: idle[k] for k in keys},
        "loaded": {k: loaded[k] for k in keys},
        # What the agent actually decoded under load (its CAN reader's rate), not what was sent.
        "loaded_frames_per_s": loaded["load_ingested"].get("frames_per_s")
        or loaded["load_sent_frames_per_s"],
        "load_sent_frames_per_s": loaded["load_sent_frames_per_s"],
        "ratio_p99": ratio,
        "loaded_in_loop": {k: in_loop[k] for k in keys},
        "loaded_cpu_starved": {k: starved[k] for k in keys},
        "phases": {
            "idle": idle,
            "loaded": loaded,
            "loaded_in_loop": in_loop,
            "loaded_cpu_starved": starved,
        },
        "cpu_affinity": {"agent": [0], "fast_path": [1]} if PINNED else None,
        "traffic_generator": {"nice": TRAFFIC_NICE, "cpus": [0] if PINNED else None},
        "radar_sender_and_broker_cpus": [0] if PINNED else None,
        "radar_rate_hz": rate,
        "seconds_per_phase": seconds,
        "machine": machine(),
    }


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench fastpath``."""
    return run_fastpath_benchmark(
        seconds=args.seconds or 15.0, rate=200.0, load_rate=float(args.messages or 20_000)
    )
