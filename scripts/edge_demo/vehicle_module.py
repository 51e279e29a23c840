"""Demo-only module: the simulated vehicle inside the agent's own process.

Used only in the demo's ``in-process`` mode, where no CAN channel can cross processes (no
vcan, no network namespace): python-can's ``virtual`` bus connects buses of one process, so
the vehicle, the CAN reader and the fast path (``isolation = "in-loop"``) must share one.
Loaded with ``entry_point = "edge_demo.vehicle_module:SimulatedVehicleModule"``; never
installed, never part of a real deployment.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import can
from pydantic import BaseModel, ConfigDict, Field

from edge_agent.module_api import Module
from edge_demo.drive import ROUTE, drive


class SimulatedVehicleConfig(BaseModel):
    """Where the vehicle sends its frames and writes its trace."""

    model_config = ConfigDict(extra="forbid")

    channel: str = "demo"
    trace: Path
    seconds: float | None = Field(default=None, gt=0)
    scenario: str = ROUTE


class SimulatedVehicleModule(Module[SimulatedVehicleConfig]):
    """Drives the demo route on a ``virtual`` CAN channel in a thread of the agent."""

    name = "demo-vehicle"
    version = "1.0.0"
    config_model = SimulatedVehicleConfig

    async def start(self) -> None:
        """Open the virtual channel; the drive begins in ``run``."""
        self._stop = threading.Event()
        self._bus = can.Bus(interface="virtual", channel=self.config.channel)
        self.context.on_stop(self._bus.shutdown)
        # The simulated ECUs answer diagnostics on a bus of their own on the same channel.
        self._ecu_bus = can.Bus(interface="virtual", channel=self.config.channel)
        self.context.on_stop(self._ecu_bus.shutdown)

    async def run(self) -> None:
        """Drive to the end of the route, then idle (the demo stops the agent)."""
        result = await asyncio.to_thread(
            drive,
            self._bus,
            self.config.trace,
            stop=self._stop,
            seconds=self.config.seconds,
            scenario=self.config.scenario,
            ecu_bus=self._ecu_bus,
        )
        self.context.health.set_detail("result", result)
        await asyncio.Event().wait()

    async def stop(self) -> None:
        """End the drive (it notices within one 5 ms tick)."""
        self._stop.set()
