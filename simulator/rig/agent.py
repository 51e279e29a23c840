"""A real agent in a network namespace, for the soak run and the fault-matrix tests.

The agent runs as its own process (``python -m edge_agent run``) with the CAN reader, the
fast path in its own process, telemetry, the heartbeat and, when a broker port is given, the
cloud link; every CAN participant uses python-can's ``udp_multicast`` inside a namespace the
caller made with :func:`~edge_agent.simulator.rig.netns.multicast_namespace` (docs/simulator.md,
"Running").
Figures come from where an operator reads them: ``health.json`` and ``/proc``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomli_w

from edge_agent.simulator.rig.broker import mosquitto_binary
from edge_agent.simulator.rig.netns import CHANNEL, in_namespace

VEHICLE_DBC = "package:edge_agent.simulator/data/vehicle.dbc"
PYTHON = [sys.executable, "-P"]
# A second CAN channel for load or a babbling node; its own port (udp_multicast binds the port
# on every address, so two channels on one port would hear each other).
LOAD_CHANNEL = "239.74.163.3"
LOAD_PORT = 43114
BROKER_PORT = 18883


def config_text(config: Mapping[str, Mapping[str, Any]]) -> str:
    """An agent.toml from ``{"agent": {...}, "spool": {...}, "modules": {name: {...}}}``."""
    return tomli_w.dumps(config)


def agent_config(
    state_dir: Path,
    *,
    broker_port: int | None = None,
    broker_host: str = "127.0.0.1",
    load_bus: bool = False,
    telemetry_queue: int | None = None,
    spool: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every module that makes sense on a development machine, on the namespace's channels.

    ``load_bus`` adds a second CAN reader bus on :data:`LOAD_CHANNEL` (bench traffic or a
    babbling node); ``telemetry_queue`` shrinks telemetry's decoded-message queue.
    """
    buses: list[dict[str, Any]] = [
        {"name": "vehicle", "interface": "udp_multicast", "channel": CHANNEL, "dbc": VEHICLE_DBC}
    ]
    if load_bus:
        buses.append(
            {
                "name": "powertrain",
                "interface": "udp_multicast",
                "channel": LOAD_CHANNEL,
                "dbc": VEHICLE_DBC,
                "options": {"port": LOAD_PORT},
            }
        )
    telemetry: dict[str, Any] = {
        "batch_max_age_s": 2.0,
        "streams": [
            {
                "name": "motion",
                "priority": "telemetry-high",
                "signals": [
                    {"signal": "EgoSpeed", "scheme": "periodic", "period_s": 0.1},
                    {"signal": "LongitudinalAccel", "scheme": "periodic", "period_s": 0.1},
                    {"signal": "ObjectDistance", "scheme": "periodic", "period_s": 0.1},
                ],
            },
            {"name": "radar", "signals": [{"signal": "ObjectRelativeSpeed"}]},
        ],
        "captures": [
            {
                "name": "hard-braking",
                "stream": "captures",
                "when": {"signal": "LongitudinalAccel", "op": "<", "value": -4.0},
                "signals": ["EgoSpeed", "LongitudinalAccel", "ObjectDistance", "BrakePressure"],
                "pre_s": 10.0,
                "post_s": 5.0,
            }
        ],
    }
    if telemetry_queue is not None:
        telemetry["queue_size"] = telemetry_queue
    modules: dict[str, Any] = {
        "heartbeat": {"required": True, "config": {"interval_s": 1.0}},
        "can-reader": {"config": {"buses": buses}},
        "fast-path": {
            "isolation": "process",
            "required": True,
            "config": {
                "event_topic": "cloud/out/events",
                "can": {"interface": "udp_multicast", "channel": CHANNEL},
            },
        },
        "telemetry": {"config": telemetry},
    }
    if broker_port is not None:
        modules["cloud-link"] = {
            "config": {
                "host": broker_host,
                "port": broker_port,
                "tls": False,
                "keepalive_s": 5,
                "reconnect_max_s": 2.0,
            }
        }
    return {
        "agent": {
            "vehicle_id": "rig-1",
            "state_dir": str(state_dir),
            "log_level": "warning",
            "log_format": "json",
        },
        "spool": dict(spool or {"max_mb": 64}),
        "modules": modules,
    }


class Agent:
    """One agent process inside a namespace, with its config and log in ``workdir``."""

    def __init__(
        self,
        namespace: str,
        workdir: Path,
        config: Mapping[str, Mapping[str, Any]],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.namespace = namespace
        self.workdir = workdir
        self.state_dir = Path(config["agent"]["state_dir"])
        self.config_file = workdir / "agent.toml"
        self.log_file = workdir / "agent.log"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(config_text(config), encoding="utf-8")
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The agent's process id (``ip netns exec`` execs, so it is the Popen's)."""
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 40.0) -> None:
        """Start the agent and return once its health file says ready."""
        command = [*PYTHON, "-m", "edge_agent", "run", "--config", str(self.config_file)]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                in_namespace(self.namespace, command), stderr=log, env=self.env
            )
        deadline = time.monotonic() + timeout
        while not self.health().get("agent", {}).get("ready"):
            if self.process.poll() is not None:
                raise RuntimeError(f"the agent exited with {self.process.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the agent was not ready within {timeout} s: {self.log()}")
            time.sleep(0.1)

    def health(self) -> dict[str, Any]:
        """The agent's health.json, or {} while there is none (or it is being replaced)."""
        try:
            snapshot: dict[str, Any] = json.loads((self.state_dir / "health.json").read_text())
        except (OSError, ValueError):
            return {}
        return snapshot

    def module(self, name: str) -> dict[str, Any]:
        """One module's entry of the health file ({} when missing)."""
        entry: dict[str, Any] = self.health().get("modules", {}).get(name, {})
        return entry

    def alive(self) -> bool:
        """Whether the agent process still runs."""
        return self.process is not None and self.process.poll() is None

    def log(self, tail: int = 3000) -> str:
        """The end of the agent's log (for failure messages)."""
        try:
            return self.log_file.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (staged shutdown), SIGKILL after ``timeout``; returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def helper(namespace: str, module: str, *args: str, prefix: Sequence[str] = ()) -> list[str]:
    """Command line for ``python -m module args`` inside the namespace.

    ``prefix`` goes before the interpreter: ``taskset``, ``nice`` and the like.
    """
    return in_namespace(namespace, [*prefix, *PYTHON, "-m", module, *args])


def radar_sender(
    namespace: str, seconds: float, rate_hz: float = 100.0, *, prefix: Sequence[str] = ()
) -> list[str]:
    """The bench's vehicle side: radar and ego frames for the fast path; counts brake frames."""
    return helper(
        namespace,
        "edge_agent.simulator.rig.radar_sender",
        "--channel",
        CHANNEL,
        "--rate",
        str(rate_hz),
        "--seconds",
        str(seconds),
        prefix=prefix,
    )


def load_traffic(
    namespace: str, rate: float, seconds: float, *, prefix: Sequence[str] = ()
) -> list[str]:
    """Bench traffic (every DBC message, round robin) on :data:`LOAD_CHANNEL` at ``rate``.

    The generator prints its figures as JSON on stdout when it ends (``frames_per_s``).
    """
    return helper(
        namespace,
        "edge_agent.simulator.rig.traffic",
        "--channel",
        LOAD_CHANNEL,
        "--port",
        str(LOAD_PORT),
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        prefix=prefix,
    )


def demo_drive(namespace: str, seconds: float | None = None) -> list[str]:
    """The simulator's demo route, closed loop with the agent's fast path."""
    args = ["run", "--scenario", "demo-route", "--interface", "udp_multicast"]
    args += ["--channel", CHANNEL, "--json"]
    if seconds is not None:
        args += ["--seconds", str(seconds)]
    return helper(namespace, "edge_agent.simulator.cli", *args)


@contextmanager
def namespace_broker(namespace: str, host: str = "127.0.0.1") -> Iterator[int]:
    """A private plaintext mosquitto listening on ``host`` inside the namespace; its port."""
    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    with tempfile.TemporaryDirectory(prefix="edge-agent-rig-broker-") as scratch:
        conf = Path(scratch) / "mosquitto.conf"
        lines = [f"listener {BROKER_PORT} {host}", "allow_anonymous true", "persistence false"]
        lines += ["max_queued_messages 1000000", "user root"]
        conf.write_text("\n".join(lines) + "\n")
        broker = subprocess.Popen(
            in_namespace(namespace, [binary, "-c", str(conf)]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not _listening(namespace, host, BROKER_PORT):
                if broker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the namespace's mosquitto did not start")
                time.sleep(0.05)
            yield BROKER_PORT
        finally:
            broker.terminate()
            broker.wait(timeout=10)


def _listening(namespace: str, host: str, port: int) -> bool:
    probe = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.2)"
    result = subprocess.run(
        in_namespace(namespace, [*PYTHON, "-c", probe, host, str(port)]),
        capture_output=True,
        check=False,
    )
    return result.returncode == 0
