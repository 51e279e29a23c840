"""A real ``edge-agent run`` process: signals, sd_notify on a real socket, watchdog, status.

The test plays systemd: it binds the AF_UNIX datagram socket, passes it as NOTIFY_SOCKET,
and records every datagram with the (system-wide) monotonic time it arrived. The test
modules leave marker files with their own monotonic times, so the two can be compared.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from fixtures.misbehaving import read_marker
from fixtures.waiting import wait_until_sync

TESTS_DIR = Path(__file__).resolve().parent.parent
EDGE_AGENT = Path(sys.executable).parent / "edge-agent"
SHUTDOWN_LIMIT_S = 5.0


class NotifySocket:
    """systemd's end of sd_notify: records (arrival monotonic time, datagram text)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received: list[tuple[float, str]] = []
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.settimeout(0.05)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="notify-socket", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append((time.monotonic(), data.decode()))

    def times(self, line: str) -> list[float]:
        """Arrival times of the datagrams containing ``line`` (e.g. ``WATCHDOG=1``)."""
        return [at for at, text in list(self.received) if line in text.splitlines()]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self._socket.close()


def write_config(directory: Path, modules: dict[str, dict[str, Any]]) -> Path:
    agent = {
        "vehicle_id": "process-test",
        "state_dir": str(directory / "state"),
        "shutdown_timeout_s": SHUTDOWN_LIMIT_S,
        "health_interval_s": 0.1,
        "log_format": "json",
    }
    path = directory / "agent.toml"
    path.write_text(tomli_w.dumps({"agent": agent, "modules": modules}))
    return path


def agent_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EDGE_AGENT__", "NOTIFY_SOCKET", "WATCHDOG_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def status(state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EDGE_AGENT), "status", "--json", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        env=agent_env(),
        timeout=60,
        check=False,
    )


@pytest.fixture
def short_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a short path: AF_UNIX socket paths are limited to 107 bytes."""
    return tmp_path_factory.mktemp("agent")


@pytest.fixture
def notify_socket(short_dir: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(short_dir / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture
def launch(short_dir: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``edge-agent run``; whatever is still running at the end is killed."""
    processes: list[subprocess.Popen[bytes]] = []

    def launcher(config: Path, **env: str) -> subprocess.Popen[bytes]:
        log = (short_dir / "agent.log").open("ab")
        process = subprocess.Popen(
            [str(EDGE_AGENT), "run", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=agent_env(**env),
        )
        log.close()
        processes.append(process)
        return process

    yield launcher
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def agent_log(short_dir: Path) -> str:
    return (short_dir / "agent.log").read_text(errors="replace")


def terminate(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM the agent; return its exit status."""
    process.send_signal(signal.SIGTERM)
    return process.wait(SHUTDOWN_LIMIT_S + 10)


def test_ready_only_after_modules_run_and_sigterm_stops_cleanly(
    short_dir: Path,
    notify_socket: NotifySocket,
    launch: Callable[..., subprocess.Popen[bytes]],
) -> None:
    config = write_config(
        short_dir,
        {
            "slow": {
                "entry_point": "fixtures.misbehaving:SlowStart",
                "required": True,
                "config": {"start_delay_s": 0.5},
            },
            "heartbeat": {"config": {"interval_s": 0.1}},
        },
    )
    state_dir = short_dir / "state"
    agent = launch(config, NOTIFY_SOCKET=str(notify_socket.path))

    ready_at = wait_until_sync(
        lambda: notify_socket.times("READY=1"), timeout=15.0, what="READY=1"
    )[0]
    started_at = read_marker(state_dir, "slow", "started")
    assert started_at is not None, "READY came before the slow module finished starting"
    assert ready_at >= started_at, "READY must wait for the slow module's start"
    _, first = notify_socket.received[0]
    assert first.startswith("STATUS=starting 2 modules")
    assert "READY=1" not in first
    [ready_text] = [text for _, text in notify_socket.received if "READY=1" in text]
    assert "STATUS=running 2/2 modules" in ready_text.splitlines()

    # While it runs, `edge-agent status` reads its health.
    running = wait_until_sync(
        lambda: (
            (r := status(state_dir)).returncode == 0
            and json.loads(r.stdout)["modules"]["heartbeat"]["state"] == "running"
            and r
        ),
        timeout=15.0,
        what="status to show the heartbeat running",
    )
    snapshot = json.loads(running.stdout)
    assert snapshot["agent"]["pid"] == agent.pid
    assert snapshot["agent"]["ready"] is True
    assert snapshot["agent"]["vehicle_id"] == "process-test"
    assert snapshot["modules"]["slow"]["state"] == "running"
    assert running.stderr == ""

    # How long the shutdown may take is the supervisor's to keep (test_supervisor checks which
    # limit stopped a module); here: it stops cleanly, once, saying so.
    code = terminate(agent)
    assert code == 0, agent_log(short_dir)
    stopping = notify_socket.times("STOPPING=1")
    assert len(stopping) == 1
    assert stopping[0] > ready_at
    assert "Traceback" not in agent_log(short_dir)

    # Once it has stopped, status says so in one line and exits 3.
    after = status(state_dir)
    assert after.returncode == 3
    assert after.stdout == ""
    assert after.stderr == (
        f"edge-agent: no agent is running (pid {agent.pid} from {state_dir / 'health.json'} "
        "is gone)\n"
    )
    # The last health file it wrote says it stopped.
    assert json.loads((state_dir / "health.json").read_text())["agent"]["state"] == "stopped"


def test_watchdog_pings_stop_while_the_event_loop_is_blocked(
    short_dir: Path,
    notify_socket: NotifySocket,
    launch: Callable[..., subprocess.Popen[bytes]],
) -> None:
    config = write_config(
        short_dir,
        {
            "blocker": {
                "entry_point": "fixtures.misbehaving:LoopBlocker",
                # Time for a few pings before the block, even on a loaded machine.
                "config": {"block_after_s": 1.2, "block_s": 1.5},
            }
        },
    )
    state_dir = short_dir / "state"
    agent = launch(config, NOTIFY_SOCKET=str(notify_socket.path), WATCHDOG_USEC="200000")

    block_start = wait_until_sync(
        lambda: read_marker(state_dir, "blocker", "block-start"),
        timeout=15.0,
        what="the block to start",
    )
    block_end = wait_until_sync(
        lambda: read_marker(state_dir, "blocker", "block-end"),
        timeout=15.0,
        what="the block to end",
    )
    assert block_end - block_start >= 1.5
    # Pings come back once the lag the block caused has aged out of the measurement (~1 s).
    wait_until_sync(
        lambda: [t for t in notify_socket.times("WATCHDOG=1") if t > block_end + 0.8],
        timeout=15.0,
        what="watchdog pings to resume",
    )
    pings = notify_socket.times("WATCHDOG=1")
    before = [t for t in pings if t < block_start]
    assert len(before) >= 2, f"expected pings every 0.1 s before the block, got {before}"
    during = [t for t in pings if block_start + 0.1 < t < block_end]
    assert during == [], "the watchdog was pinged while the event loop was blocked"
    # The lag the block caused keeps pings withheld for a while after it (without that check
    # about 8 pings would come in this time; one may slip out before the lag is measured).
    soon_after = [t for t in pings if block_end < t < block_end + 0.8]
    assert len(soon_after) <= 1, f"pings resumed at once after the block: {soon_after}"

    code = terminate(agent)
    assert code == 0, agent_log(short_dir)
    assert "watchdog ping withheld" in agent_log(short_dir)


def test_broken_required_module_ends_the_process_with_exit_4(
    short_dir: Path, launch: Callable[..., subprocess.Popen[bytes]]
) -> None:
    config = write_config(
        short_dir,
        {
            "crasher": {
                "entry_point": "fixtures.misbehaving:CrashOnStart",
                "required": True,
                "max_failures": 2,
                "backoff_initial_s": 0.01,
                "backoff_max_s": 0.01,
            }
        },
    )
    agent = launch(config)
    assert agent.wait(30) == 4
    log = agent_log(short_dir)
    assert "required module failed; stopping the agent" in log
    assert "Traceback" not in log


def test_status_without_an_agent_exits_3(short_dir: Path) -> None:
    result = status(short_dir / "nothing-here")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"edge-agent: no agent is running (no {short_dir / 'nothing-here' / 'health.json'})\n"
    )
