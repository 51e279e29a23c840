"""Modules with Isolation.PROCESS run in a supervised child process bridged to the bus."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from edge_agent.bus import Message
from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.supervisor import Supervisor
from fixtures.waiting import wait_until


def _config(tmp_path: Path, **modules: dict[str, Any]) -> Any:
    return validate_config(
        {
            "agent": {"vehicle_id": "test-1", "state_dir": str(tmp_path), "shutdown_timeout_s": 5},
            "modules": modules,
        }
    )


async def _echo(supervisor: Supervisor, payload: Any) -> Message:
    outbox = supervisor.bus.subscribe("probe/out", maxsize=10)
    try:
        async with asyncio.timeout(10):
            while True:
                await supervisor.bus.publish("probe/in", payload)
                try:
                    async with asyncio.timeout(0.5):
                        return await outbox.get()
                except TimeoutError:
                    continue
    finally:
        supervisor.bus.unsubscribe(outbox)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_module_runs_in_its_own_process_and_round_trips_the_bus(tmp_path: Path) -> None:
    config = _config(tmp_path, echo={"entry_point": "fixtures.isolated:EchoInChild"})
    supervisor = Supervisor(config)
    agent = asyncio.create_task(supervisor.run())
    runner = supervisor.runners["echo"]
    await wait_until(lambda: runner.state is ModuleState.RUNNING, what="the echo module running")
    reply = await _echo(supervisor, {"n": 1})
    child_pid = reply.payload["pid"]
    assert child_pid != os.getpid()
    assert reply.payload["echo"] == {"n": 1}
    assert reply.sender == "echo"
    await wait_until(
        lambda: supervisor.snapshot()["modules"]["echo"]["details"].get("child_pid") == child_pid,
        what="the child's pid in health",
    )
    # the child's upstream queue is bounded and its drops are reported
    await wait_until(
        lambda: "upstream_dropped" in supervisor.snapshot()["modules"]["echo"]["details"],
        what="the child's drop counter in health",
    )
    assert supervisor.snapshot()["modules"]["echo"]["details"]["upstream_dropped"] == 0
    ok, _ = supervisor.alive()
    assert ok
    supervisor.request_stop()
    assert await asyncio.wait_for(agent, 10) == 0
    assert not _pid_alive(child_pid), "the child must be gone after shutdown"


async def test_killed_child_is_restarted_by_policy(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        echo={"entry_point": "fixtures.isolated:EchoInChild", "backoff_initial_s": 0.05},
    )
    supervisor = Supervisor(config)
    agent = asyncio.create_task(supervisor.run())
    runner = supervisor.runners["echo"]
    await wait_until(lambda: runner.state is ModuleState.RUNNING, what="the echo module running")
    first_pid = (await _echo(supervisor, 1)).payload["pid"]
    os.kill(first_pid, signal.SIGKILL)
    await wait_until(
        lambda: runner.restarts == 1 and runner.state is ModuleState.RUNNING,
        what="the echo module restarted and running",
    )
    assert "child process exited" in runner.last_error
    second_pid = (await _echo(supervisor, 2)).payload["pid"]
    assert second_pid != first_pid
    supervisor.request_stop()
    assert await asyncio.wait_for(agent, 10) == 0


async def test_failure_inside_the_child_is_reported_with_its_reason(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        echo={
            "entry_point": "fixtures.isolated:EchoInChild",
            "restart": "never",
            "config": {"fail_after_echoes": 1},
        },
    )
    supervisor = Supervisor(config)
    agent = asyncio.create_task(supervisor.run())
    runner = supervisor.runners["echo"]
    await wait_until(lambda: runner.state is ModuleState.RUNNING, what="the module running")
    await _echo(supervisor, "boom")
    await wait_until(lambda: runner.state is ModuleState.FAILED, what="the module failed")
    assert "asked to fail" in runner.last_error
    supervisor.request_stop()
    assert await asyncio.wait_for(agent, 10) == 0


async def test_child_that_never_gets_ready_is_stopped_at_the_start_limit(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        slow={
            "entry_point": "fixtures.isolated:NeverReadyInChild",
            "restart": "never",
            "start_timeout_s": 1.5,
            "stop_timeout_s": 1.0,
        },
    )
    supervisor = Supervisor(config)
    agent = asyncio.create_task(supervisor.run())
    runner = supervisor.runners["slow"]
    await wait_until(lambda: runner.state is ModuleState.FAILED, what="the module failed")
    assert "readiness" in runner.last_error
    supervisor.request_stop()
    assert await asyncio.wait_for(agent, 10) == 0


@pytest.mark.parametrize("blocked_s", [0.6])
async def test_child_keeps_running_while_the_agent_loop_is_blocked(
    tmp_path: Path, blocked_s: float
) -> None:
    """The child's liveness reports keep coming although the agent's loop is stuck."""
    config = _config(tmp_path, echo={"entry_point": "fixtures.isolated:EchoInChild"})
    supervisor = Supervisor(config)
    agent = asyncio.create_task(supervisor.run())
    runner = supervisor.runners["echo"]
    await wait_until(lambda: runner.state is ModuleState.RUNNING, what="the echo module running")
    child_pid = (await _echo(supervisor, 0)).payload["pid"]
    time.sleep(blocked_s)  # block the agent's event loop on purpose
    assert _pid_alive(child_pid)
    reply = await _echo(supervisor, 1)
    assert reply.payload["pid"] == child_pid, "the child was not restarted by the stall"
    supervisor.request_stop()
    assert await asyncio.wait_for(agent, 10) == 0
