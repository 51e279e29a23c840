"""The simulator on real kernel buses: udp_multicast across processes, SocketCAN vcan0."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import can
import pytest

from edge_agent.simulator.can_io import SimulatorSession
from edge_agent.simulator.runner import run_paced
from edge_agent.simulator.scenarios import get_scenario
from fixtures.tiny_aeb import TinyAeb

TESTS = Path(__file__).resolve().parent.parent
GROUP = "239.74.163.2"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=10)


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2")
    name = f"ea-sim-{uuid.uuid4().hex[:8]}"
    if _ip("netns", "add", name).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    try:
        for command in (
            ("link", "set", "lo", "up"),
            ("link", "set", "lo", "multicast", "on"),
            ("route", "add", "224.0.0.0/4", "dev", "lo"),
        ):
            assert _ip("netns", "exec", name, "ip", *command).returncode == 0
        yield name
    finally:
        _ip("netns", "delete", name)


def _wait_for_line(process: subprocess.Popen[str], expected: str, seconds: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if ready:
            line = process.stdout.readline()
            if line.strip() == expected:
                return
            if not line:
                break
    pytest.fail(f"no {expected!r} from the controller process")


@pytest.mark.slow
def test_closed_loop_across_processes_over_udp_multicast(namespace: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    controller = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            namespace,
            sys.executable,
            "-m",
            "fixtures.tiny_aeb",
            "--interface",
            "udp_multicast",
            "--channel",
            GROUP,
            "--seconds",
            "30",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_line(controller, "ready", 20.0)
        simulator = Path(sys.executable).parent / "edge-agent-sim"
        completed = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                namespace,
                str(simulator),
                "run",
                "--scenario",
                "ccrs-50",
                "--interface",
                "udp_multicast",
                "--speed",
                "2",
                "--json",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    finally:
        controller.terminate()
        controller.wait(timeout=10)
        if controller.stdout is not None:
            controller.stdout.close()
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["collision"] is False
    assert result["brake_activations"] >= 1
    assert result["brake_frames"] > 0


@pytest.mark.socketcan
def test_closed_loop_on_vcan0() -> None:
    if not Path("/sys/class/net/vcan0").exists():
        pytest.skip("no vcan0 interface (docs/simulator.md, Running: vcan0)")
    stop = threading.Event()
    with (
        can.Bus(interface="socketcan", channel="vcan0") as vehicle,
        can.Bus(interface="socketcan", channel="vcan0") as agent,
    ):
        aeb = TinyAeb(agent)

        def control() -> None:
            while not stop.is_set():
                frame = agent.recv(timeout=0.05)
                if frame is not None:
                    aeb.handle(frame)

        thread = threading.Thread(target=control, name="tiny-aeb")
        thread.start()
        try:
            session = SimulatorSession(get_scenario("ccrs-30"), vehicle)
            result = run_paced(session, speed=1.0)
        finally:
            stop.set()
            thread.join(timeout=5)
    assert not result.collision
    assert result.brake_activations >= 1
