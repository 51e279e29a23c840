"""The supervisor binds ``module`` to each module's tasks: library lines carry it too.

A module's own logger has ``module`` bound; python-can's and aiomqtt's loggers know nothing of
modules. The supervisor starts each module's lifecycle in a context with ``module=<name>``
bound (structlog contextvars), so their lines name the module whose task wrote them.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import validate_config
from edge_agent.logs import configure_logging
from edge_agent.module_api import ModuleState
from edge_agent.supervisor import Supervisor
from fixtures.waiting import wait_until


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines_of(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_library_lines_from_a_module_task_name_the_module(tmp_path: Path) -> None:
    out = io.StringIO()
    configure_logging("debug", "json", out)
    loaded = validate_config(
        {
            "agent": {"vehicle_id": "test-car", "state_dir": str(tmp_path)},
            "modules": {
                "chatty": {"entry_point": "fixtures.library_logging:LibraryLogging"},
                "heartbeat": {"config": {"interval_s": 0.05}},
            },
        }
    )
    supervisor = Supervisor(loaded)
    agent = asyncio.create_task(supervisor.run())
    try:
        await wait_until(
            lambda: supervisor.runners["chatty"].state is ModuleState.RUNNING,
            what="the chatty module running",
        )
        await wait_until(
            lambda: any(x["event"] == "from a spawned task" for x in lines_of(out)),
            what="the spawned task's log line",
        )
    finally:
        supervisor.request_stop("test")
        await asyncio.wait_for(agent, 10)
    lines = lines_of(out)
    by_event = {line["event"]: line for line in lines}
    assert by_event["from start"]["logger"] == "can.library_logging"
    assert by_event["from start"]["module"] == "chatty"
    assert by_event["from a spawned task"]["logger"] == "aiomqtt"
    assert by_event["from a spawned task"]["module"] == "chatty"
    python_can = [x for x in lines if x["logger"] == "can" and "library-logging" in x["event"]]
    assert python_can, "python-can logs the bus configuration it opens at debug level"
    assert {line["module"] for line in python_can} == {"chatty"}
    # The heartbeat's state changes name the heartbeat, never the neighbour's binding.
    states = [x for x in lines if x["event"] == "module state" and x["module"] == "heartbeat"]
    assert states
    assert all(line["logger"] == "edge_agent.supervisor" for line in states)
