"""The demo's MQTT broker: the one configured, else mosquitto, else an embedded Python one.

``DEMO_MQTT=HOST:PORT`` names a broker that already runs (nothing is started). Otherwise a
private mosquitto on a free loopback port when ``mosquitto`` is installed, else the
``amqtt`` broker from the ``demo`` extra (MQTT 3.1.1 only), else none: the demo then runs
without the cloud link and says so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.simulator.rig.broker import LocalBroker, free_port, mosquitto_binary


@dataclass
class Broker:
    """A broker the demo can use: where it listens, what it is, how to stop it."""

    host: str
    port: int
    kind: str
    protocol: str  # "5" or "3.1.1": what the broker speaks at most
    stop: Callable[[], None] = field(default=lambda: None)

    @property
    def label(self) -> str:
        """How the live view names it."""
        return f"{self.kind} on {self.host}:{self.port} (MQTT {self.protocol})"


def _wait_listening(host: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded broker exited with {process.returncode}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"embedded broker did not listen on {port}; see {log}")


def _configured(value: str) -> Broker:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"demo: DEMO_MQTT={value!r}: write HOST:PORT, e.g. 127.0.0.1:1883")
    return Broker(host, int(port), "configured broker", "5")


def start_broker(work: Path) -> Broker | None:
    """Start (or name) the demo's broker; None when there is none to be had."""
    configured = os.environ.get("DEMO_MQTT")
    if configured:
        return _configured(configured)
    if mosquitto_binary() is not None:
        mosquitto = LocalBroker(work / "mosquitto")
        mosquitto.start()
        return Broker("127.0.0.1", mosquitto.port, "mosquitto", "5", mosquitto.stop)
    if importlib.util.find_spec("amqtt") is None:
        return None
    port = free_port()
    log = work / "amqtt.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", "edge_demo.embedded_broker", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    try:
        _wait_listening("127.0.0.1", port, process, log)
    except RuntimeError:
        stop()
        raise
    return Broker("127.0.0.1", port, "embedded amqtt broker", "3.1.1", stop)
