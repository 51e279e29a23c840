"""The can-reader module on a real SocketCAN vcan0: descriptor reader, kernel filters, writer.

Needs vcan0: ``scripts/test-vcan`` runs it inside a VM with Debian's kernel
(``TEST_VCAN_PYTEST_ARGS="-k vcan0_reader"`` runs only this file's test there).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import can
import pytest

from edge_agent.can.types import DecodedMessage, FrameToSend
from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.modules.can_reader import CanReaderModule
from edge_agent.sdnotify import SystemdNotifier
from edge_agent.supervisor import Supervisor
from fixtures.can_helpers import BENCH_DBC, frame
from fixtures.waiting import wait_until

VCAN0 = Path("/sys/class/net/vcan0")
pytestmark = [pytest.mark.socketcan, pytest.mark.timeout(300)]


async def test_vcan0_reader_uses_the_descriptor_kernel_filters_and_sends(tmp_path: Path) -> None:
    if not VCAN0.exists():
        pytest.skip("no vcan0 interface: run scripts/test-vcan (a VM with a vcan kernel)")
    config = validate_config(
        {
            "agent": {"vehicle_id": "vcan-car", "state_dir": str(tmp_path)},
            "modules": {
                "can-reader": {
                    "start_timeout_s": 60,
                    "config": {
                        "stats_interval_s": 0.1,
                        "buses": [
                            {
                                "name": "vcan",
                                "interface": "socketcan",
                                "channel": "vcan0",
                                "dbc": str(BENCH_DBC),
                                "publish_raw": True,
                            }
                        ],
                    },
                }
            },
        }
    )
    supervisor = Supervisor(config, notifier=SystemdNotifier(environ={}))
    task = asyncio.create_task(supervisor.run())
    peer = can.Bus(interface="socketcan", channel="vcan0")
    try:
        decoded = supervisor.bus.subscribe("can/vcan/decoded/#", maxsize=100)
        raw = supervisor.bus.subscribe("can/vcan/raw", maxsize=100)
        runner = supervisor.runners["can-reader"]
        await wait_until(
            lambda: runner.state is ModuleState.RUNNING, timeout=60, what="can-reader running"
        )
        module = runner.module
        assert isinstance(module, CanReaderModule)
        bus_details = module.connections["vcan"].details()
        assert bus_details["reader"] == "fd"
        assert bus_details["kernel_filters"] == 4
        peer.send(frame(0x7AB, bytes(8)))  # not in the DBC: the kernel drops it
        peer.send(frame(257, bytes(8)))
        message = await asyncio.wait_for(decoded.get(), 30)
        assert isinstance(message.payload, DecodedMessage)
        assert message.payload.message == "VehicleDynamics"
        assert (await asyncio.wait_for(raw.get(), 30)).payload.arbitration_id == 257
        counters = module.connections["vcan"].counters
        assert (counters.frames, counters.unknown_ids) == (1, 0)
        reply = await supervisor.bus.request(
            "can/vcan/send", FrameToSend(0x0A0, b"\x05\x06"), timeout=30
        )
        assert reply.payload["sent"]
        echoed = await asyncio.to_thread(peer.recv, 30)
        assert echoed is not None
        assert (echoed.arbitration_id, bytes(echoed.data)) == (0x0A0, b"\x05\x06")
    finally:
        peer.shutdown()
        supervisor.request_stop()
        await asyncio.wait_for(task, 60)
