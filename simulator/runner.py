"""Running a session against the wall clock, and recording a scenario to a candump file."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from edge_agent.simulator.can_io import SimulatorSession
from edge_agent.simulator.faults import FaultPlan
from edge_agent.simulator.recorder import CandumpRecorder
from edge_agent.simulator.results import ScenarioResult
from edge_agent.simulator.scenario import Scenario

RECORDING_EPOCH = 1_700_000_000.0
"""Default start time of recordings: fixed, so the same scenario and seed give the same file."""


def run_paced(
    session: SimulatorSession,
    speed: float = 1.0,
    *,
    monotonic: Callable[[], float] = time.monotonic,
) -> ScenarioResult:
    """Run ``session`` to its end, ``speed`` times faster than real time (``inf``: flat out).

    Between ticks it waits on the bus, so brake requests are taken as they arrive; a tick that
    falls behind the wall clock is not waited for (the run catches up instead of drifting).
    """
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    start = monotonic()
    while not session.finished:
        session.step()
        if math.isinf(speed):
            continue
        remaining = start + session.time_s / speed - monotonic()
        if remaining > 0:
            session.wait(remaining)
    return session.result()


def record_scenario(
    scenario: Scenario,
    path: str,
    *,
    seconds: float | None = None,
    channel: str = "vcan0",
    seed: int = 0,
    faults: FaultPlan | None = None,
    epoch: float = RECORDING_EPOCH,
    jitter_ms: float = 0.0,
) -> tuple[ScenarioResult, int]:
    """Write ``scenario`` (open loop, no brake input) to a candump ``.log`` file at ``path``.

    ``seconds`` replaces the scenario's duration; ``jitter_ms`` adds Gaussian receive-time
    jitter to the logged timestamps (seeded by ``seed``). Returns the result and the number
    of frames.
    """
    with CandumpRecorder(path, channel, jitter_ms=jitter_ms, seed=seed) as recorder:
        session = SimulatorSession(
            scenario,
            None,
            seed=seed,
            faults=faults,
            duration_s=seconds,
            frame_sink=recorder,
            epoch=epoch,
        )
        result = session.run()
        return result, recorder.frames
