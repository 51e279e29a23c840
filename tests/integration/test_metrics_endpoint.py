"""The Prometheus endpoint of a real running agent, scraped over HTTP.

The agent runs in-process with the CAN reader on python-can's virtual bus; frames sent on
the bus must show up in ``edge_agent_can_frames_total`` at the next health snapshot. Slow
and greedy scrapers are real sockets that never finish their request.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import can
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.sdnotify import SystemdNotifier
from edge_agent.supervisor import Supervisor
from fixtures.can_helpers import BENCH_DBC, frame, no_leaked_channels
from fixtures.waiting import wait_until

__all__ = ["no_leaked_channels"]
pytestmark = pytest.mark.usefixtures("no_leaked_channels")


@pytest.fixture
def channel() -> str:
    return f"chassis-{uuid.uuid4().hex}"


def config_for(tmp_path: Path, channel: str, **metrics: Any) -> Any:
    return validate_config(
        {
            "agent": {
                "vehicle_id": "metrics-car",
                "state_dir": str(tmp_path / "state"),
                "health_interval_s": 0.05,
            },
            "metrics": {"listen": "127.0.0.1:0", **metrics},
            "modules": {
                "can-reader": {
                    "config": {
                        "buses": [
                            {
                                "name": "chassis",
                                "interface": "virtual",
                                "channel": channel,
                                "dbc": str(BENCH_DBC),
                            }
                        ],
                        "stats_interval_s": 0.05,
                    }
                }
            },
        }
    )


@asynccontextmanager
async def agent(config: Any) -> AsyncIterator[Supervisor]:
    supervisor = Supervisor(config, notifier=SystemdNotifier(environ={}))
    task = asyncio.create_task(supervisor.run())
    try:
        runner_ready = lambda: (  # noqa: E731
            "can-reader" in supervisor.runners
            and supervisor.runners["can-reader"].state is ModuleState.RUNNING
        )
        await wait_until(runner_ready, timeout=10, what="can-reader running")
        yield supervisor
    finally:
        supervisor.request_stop()
        await asyncio.wait_for(task, 15)


@pytest.fixture
def sender(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


def scrape(address: tuple[str, int], timeout: float = 5.0) -> str:
    host, port = address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as answer:
        body: bytes = answer.read()
        return body.decode()


def value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def test_a_scrape_reads_frames_per_bus_modules_queues_and_spool(
    tmp_path: Path, channel: str, sender: can.BusABC
) -> None:
    async with agent(config_for(tmp_path, channel)) as supervisor:
        address = supervisor.metrics_address
        assert address is not None
        for _ in range(7):
            sender.send(frame(257, bytes(8)))

        async def seven() -> bool:
            text = await asyncio.to_thread(scrape, address)
            frames = value(text, "edge_agent_can_frames_total", bus="chassis", module="can-reader")
            return frames == 7

        await wait_until(seven, timeout=10, what="7 frames in the metrics", poll_s=0.02)
        text = await asyncio.to_thread(scrape, address)
        assert value(text, "edge_agent_can_decoded_frames_total", bus="chassis") == 7
        assert value(text, "edge_agent_can_dropped_frames_total", bus="chassis") == 0
        assert value(text, "edge_agent_module_state", module="can-reader", state="running") == 1
        assert value(text, "edge_agent_ready") == 1
        assert value(text, "edge_agent_info", vehicle_id="metrics-car") == 1
        assert value(text, "edge_agent_spool_records", priority="events") == 0
        assert value(text, "edge_agent_spool_max_bytes") is not None
        assert value(text, "edge_agent_bus_queue_capacity", subscription="agent.status") == 100
        names = {family.name for family in text_string_to_metric_families(text)}
        assert all(name.startswith("edge_agent_") for name in names)


async def test_greedy_and_slow_scrapers_get_503_then_time_out_and_the_agent_runs_on(
    tmp_path: Path, channel: str, sender: can.BusABC
) -> None:
    # The server's socket timeout is long enough that the stalled connections still hold both
    # slots when the next scrape comes, however slow the machine (they are closed below).
    config = config_for(tmp_path, channel, max_scrapes=2, timeout_s=60)
    async with agent(config) as supervisor:
        address = supervisor.metrics_address
        assert address is not None
        with ExitStack() as stack:
            # Two connections that never send their request hold both scrape slots.
            for _ in range(2):
                stalled = stack.enter_context(socket.create_connection(address, timeout=5))
                stalled.sendall(b"GET /metr")

            def refused() -> bool:
                try:
                    scrape(address, timeout=2)
                except urllib.error.HTTPError as error:
                    return error.code == 503
                return False

            async def answered_503() -> bool:
                return await asyncio.to_thread(refused)

            await wait_until(
                answered_503, timeout=10, what="a 503 while the slots are held", poll_s=0.02
            )
            # Meanwhile the agent runs on: frames are read and health keeps being published.
            sender.send(frame(257, bytes(8)))
            reader = supervisor.snapshot()["modules"]["can-reader"]
            await wait_until(
                lambda: supervisor.snapshot()["modules"]["can-reader"]["details"]["frames"] >= 1,
                timeout=10,
                what="the reader counts a frame while scrapers stall",
            )
            assert reader["state"] == "running"
        # The stalled connections are gone (closed here, else cut after 60 s): once their
        # handler threads have seen the close and given back their slots, scrapes work again.
        answers: list[str] = []

        def served() -> bool:
            try:
                answers.append(scrape(address, timeout=5))
            except urllib.error.HTTPError as error:
                if error.code != 503:
                    raise
                return False
            return True

        async def scraped() -> bool:
            return await asyncio.to_thread(served)

        await wait_until(
            scraped,
            timeout=30,
            what="a scrape served after the stalled clients closed",
            poll_s=0.02,
        )
        assert value(answers[-1], "edge_agent_ready") == 1


async def test_a_taken_port_leaves_the_agent_running_without_metrics(
    tmp_path: Path, channel: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = config_for(tmp_path, channel, listen=f"127.0.0.1:{port}")
        async with agent(config) as supervisor:
            assert supervisor.metrics_address is None
            assert supervisor.snapshot()["modules"]["can-reader"]["state"] == "running"
