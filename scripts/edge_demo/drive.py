"""The vehicle side of the demo: a scenario, closed loop on a CAN bus, with a live trace.

Runs :class:`~edge_agent.simulator.can_io.SimulatorSession` against the wall clock and writes
one JSON line per 0.1 s of simulated time (speed, gap, time to collision, brake, frames) to a
trace file the live view tails, and a last line ``{"result": ...}`` with the scenario result.
As a process: ``python -m edge_demo.drive --interface I --channel C --trace FILE``; inside the
agent (the in-process mode): :mod:`edge_demo.vehicle_module` calls :func:`drive`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

import can

from edge_agent.simulator.can_io import BrakeRequestEvent, SimulatorSession, open_bus
from edge_agent.simulator.ecu_faults import EcuFaultMonitor
from edge_agent.simulator.ecus import EcuServer, brake_ecu, engine_ecu
from edge_agent.simulator.scenarios import get_scenario

SAMPLE_EVERY_S = 0.1
ROUTE = "demo-route"
STAGE_FRESH_S = 0.5


class _Trace:
    """Writes trace lines, flushing each so a reader in another process sees it at once."""

    def __init__(self, handle: IO[str], session: SimulatorSession) -> None:
        self.handle = handle
        self.session = session
        self.stage = 0
        self.stage_at_s = -1.0
        self.next_sample_s = 0.0
        session.brake_request_observers.append(self._on_brake)

    def _on_brake(self, event: BrakeRequestEvent) -> None:
        self.stage, self.stage_at_s = event.stage, event.sim_time_s

    def sample(self) -> None:
        session = self.session
        if session.time_s + 1e-9 < self.next_sample_s:
            return
        self.next_sample_s += SAMPLE_EVERY_S
        state = session.state
        radar = session.scenario.radar
        line = {
            "t": round(state.time_s, 3),
            "wall": round(time.time(), 3),
            "speed_kmh": round(state.ego.speed_mps * 3.6, 2),
            "gap_m": round(state.gap_m, 2),
            "in_lane": state.in_same_lane,
            "ttc_s": _rounded(state.time_to_collision_s),
            "brake_request_mps2": round(session.current_brake_request(), 2),
            "decel_mps2": round(state.brake.deceleration_mps2, 2),
            # The fast path sends a frame per decision; None: it has been silent for a while.
            "stage": self.stage if state.time_s - self.stage_at_s < STAGE_FRESH_S else None,
            "radar": not radar.dropouts.contains(state.time_s),
            "collision": state.collision is not None,
            "frames_sent": session.frames_sent,
            "brake_frames": session.brake_frames,
        }
        self.write(line)

    def write(self, line: dict[str, Any]) -> None:
        self.handle.write(json.dumps(line) + "\n")
        self.handle.flush()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def drive(
    bus: can.BusABC,
    trace_path: Path,
    *,
    stop: threading.Event,
    seconds: float | None = None,
    scenario: str = ROUTE,
    ecu_bus: can.BusABC | None = None,
) -> dict[str, Any]:
    """Run ``scenario`` in real time on ``bus`` until it ends or ``stop`` is set.

    With ``ecu_bus`` (a second bus on the same channel) the simulated engine and brake ECUs
    answer diagnostics there, and the route's radar dropout sets their radar DTC.
    Returns the scenario result (also the trace's last line).
    """
    session = SimulatorSession(get_scenario(scenario), bus, duration_s=seconds)
    with contextlib.ExitStack() as extras, trace_path.open("w", encoding="utf-8") as handle:
        if ecu_bus is not None:
            serve_ecus(session, ecu_bus, extras)
        trace = _Trace(handle, session)
        start = time.monotonic()
        while not session.finished and not stop.is_set():
            session.step()
            trace.sample()
            remaining = start + session.time_s - time.monotonic()
            if remaining > 0:
                session.wait(remaining)
        result = session.result().as_dict()
        trace.write({"result": result, "stopped_early": not session.finished})
    return result


def serve_ecus(
    session: SimulatorSession, ecu_bus: can.BusABC, extras: contextlib.ExitStack
) -> None:
    """Serve the simulated ECUs on ``ecu_bus``; the session's faults set their DTCs."""
    engine, brake = engine_ecu(), brake_ecu()
    extras.enter_context(EcuServer(ecu_bus, [engine, brake]))
    monitor = EcuFaultMonitor(engine=engine, brake=brake)
    session.step_observers.append(
        lambda time_s, radar, body: monitor.observe(time_s, radar_sending=radar, body=body)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo route on a CAN bus until it ends or SIGTERM/SIGINT arrives."""
    parser = argparse.ArgumentParser(prog="python -m edge_demo.drive")
    parser.add_argument("--interface", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--trace", required=True, type=Path)
    parser.add_argument("--seconds", type=float)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with (
        open_bus(args.interface, args.channel) as bus,
        open_bus(args.interface, args.channel) as ecu_bus,
    ):
        drive(bus, args.trace, stop=stop, seconds=args.seconds, ecu_bus=ecu_bus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
