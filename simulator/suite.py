"""The scenario suite: scenarios in closed loop, and drive logs, against a running agent.

Every scenario runs in real time (the fast path's staleness rules are wall-clock based) on a
bus the agent's fast path shares, one after another. Between two runs the bus stays silent
for ``settle_s``: the fast path sees its radar go stale, drops to its fault state and forgets
the last run, as if the car had been switched off.

Latency is measured where the vehicle sees it: for each RadarObject frame, the time from its
``send`` in this process to the first AebBrakeRequest frame received after it (the
simulator's ``brake_request_observers`` hook). That covers both CAN hops, the agent's receive,
decision and send, and this process's own scheduling, so it is an upper bound on the agent's
decision latency.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import can

from edge_agent.simulator import dbc
from edge_agent.simulator.can_io import BrakeRequestEvent, SimulatorSession
from edge_agent.simulator.results import rounded
from edge_agent.simulator.scenario import Scenario
from edge_agent.simulator.targets import NO_OBSTACLE, Target, target_for
from edge_agent.simulator.vehicle import AEB_ACTIVE_MPS2

SETTLE_S = 1.0
"""Silence between two runs: far above the fast path's 100 ms staleness limit."""
BRAKE_REQUEST_TIMEOUT_S = 0.2
"""As in the vehicle: a brake request not refreshed for this long no longer brakes."""


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """One line of the suite's report: what happened, and whether it met its target.

    ``max_decision_latency_ms`` is the largest radar-frame-sent to brake-frame-received time
    (see the module docstring); ``None`` when the agent answered no radar frame.
    ``max_pacing_lag_ms`` is how far the simulator fell behind the wall clock at worst: beyond
    the radar's 20 ms cycle, frames came late and the agent may rightly have seen stale data.
    ``first_partial_brake_s`` and ``first_full_brake_s``: when the agent's brake requests first
    reached those stages, in simulated seconds from the start.
    """

    name: str
    collision: bool | None
    impact_speed_kmh: float | None
    min_ttc_s: float | None
    brake_activations: int
    false_activation: bool
    max_decision_latency_ms: float | None
    category: str
    target: str
    target_met: bool
    misses: list[str]
    p50_decision_latency_ms: float | None
    latency_samples: int
    min_gap_m: float | None
    brake_frames: int
    duration_s: float
    max_pacing_lag_ms: float | None
    first_partial_brake_s: float | None = None
    first_full_brake_s: float | None = None

    def as_dict(self) -> dict[str, object]:
        """The result as JSON-ready values, the seven headline keys first."""
        return rounded(asdict(self))


class RoundTripLatency:
    """Radar-sent to brake-received times, one per radar frame the agent answered."""

    def __init__(self) -> None:
        self.samples_s: list[float] = []
        self._pending: float | None = None
        self._answered: float | None = None

    def observe(self, event: BrakeRequestEvent) -> None:
        """Take one brake frame of a session; only the first one after a radar frame counts."""
        self._pending = event.last_radar_sent_monotonic
        self.brake_received(event.received_monotonic)

    def radar_sent(self, sent: float) -> None:
        """Note a radar frame sent at monotonic time ``sent`` (the next brake frame answers it)."""
        self._pending = sent

    def brake_received(self, received: float) -> None:
        """Note a brake frame received at monotonic time ``received``."""
        pending = self._pending
        if pending is not None and pending != self._answered:
            self._answered = pending
            self.samples_s.append(received - pending)

    @property
    def max_ms(self) -> float | None:
        """The largest sample in milliseconds."""
        return max(self.samples_s) * 1000 if self.samples_s else None

    @property
    def p50_ms(self) -> float | None:
        """The median sample in milliseconds."""
        if not self.samples_s:
            return None
        ordered = sorted(self.samples_s)
        return ordered[len(ordered) // 2] * 1000


def drain(bus: can.BusABC, seconds: float = 0.0) -> int:
    """Take and drop frames for ``seconds`` of wall time (at least everything waiting now)."""
    dropped = 0
    deadline = time.monotonic() + seconds
    while True:
        remaining = max(deadline - time.monotonic(), 0.0)
        if bus.recv(timeout=remaining) is None:
            if remaining <= 0.0:
                return dropped
            continue
        dropped += 1


def run_scenario(
    scenario: Scenario, bus: can.BusABC, *, seed: int = 0, settle_s: float = SETTLE_S
) -> SuiteResult:
    """Run ``scenario`` in real time against the agent on ``bus``, then stay silent."""
    drain(bus)
    session = SimulatorSession(scenario, bus, seed=seed)
    latency = RoundTripLatency()
    session.brake_request_observers.append(latency.observe)
    try:
        max_lag_s = _run_in_real_time(session)
    finally:
        drain(bus, settle_s)
    result = session.result()
    target = target_for(scenario)
    misses = target.judge(result)
    return SuiteResult(
        name=scenario.name,
        collision=result.collision,
        impact_speed_kmh=result.impact_speed_kmh,
        min_ttc_s=result.min_ttc_s,
        brake_activations=result.brake_activations,
        false_activation=result.false_activation,
        max_decision_latency_ms=latency.max_ms,
        category=scenario.category.value,
        target=target.description,
        target_met=not misses,
        misses=misses,
        p50_decision_latency_ms=latency.p50_ms,
        latency_samples=len(latency.samples_s),
        min_gap_m=result.min_gap_m,
        brake_frames=result.brake_frames,
        duration_s=result.duration_s,
        max_pacing_lag_ms=max_lag_s * 1000,
        first_partial_brake_s=result.first_partial_brake_s,
        first_full_brake_s=result.first_full_brake_s,
    )


def _run_in_real_time(session: SimulatorSession) -> float:
    """``runner.run_paced`` at speed 1, measuring how far the simulator fell behind the clock."""
    start = time.monotonic()
    max_lag_s = 0.0
    while not session.finished:
        session.step()
        lag_s = time.monotonic() - (start + session.time_s)
        if lag_s < 0:
            session.wait(-lag_s)
        else:
            max_lag_s = max(max_lag_s, lag_s)
    return max_lag_s


class BrakeActivations:
    """Counts brake activations in a stream of AebBrakeRequest frames, as the vehicle would.

    A frame asking for more than ``AEB_ACTIVE_MPS2`` brakes until the next frame or until it is
    ``BRAKE_REQUEST_TIMEOUT_S`` old; each start of braking is one activation.
    """

    def __init__(self) -> None:
        database = dbc.load_vehicle_dbc()
        self.message = database.get_message_by_name(dbc.AEB_BRAKE_REQUEST)
        self.activations = 0
        self.frames = 0
        self._braking_since: float | None = None
        self._last_request = 0.0

    def frame(self, message: can.Message, now: float) -> bool:
        """Take one received frame; return whether it was a brake request."""
        if message.arbitration_id != self.message.frame_id or message.is_error_frame:
            return False
        try:
            signals = self.message.decode(bytes(message.data), decode_choices=False)
        except Exception:  # cantools raises several types for malformed frames
            return False
        self.frames += 1
        self.expire(now)
        braking = float(signals["AebDecelRequest"]) > AEB_ACTIVE_MPS2
        if braking and self._braking_since is None:
            self.activations += 1
        self._braking_since = now if braking else None
        self._last_request = now
        return True

    def expire(self, now: float) -> None:
        """Let a request that was not refreshed in time lapse."""
        if self._braking_since is not None and now - self._last_request > BRAKE_REQUEST_TIMEOUT_S:
            self._braking_since = None


def _radar_ttc(message: can.Message, radar: object) -> float | None:
    try:
        values = radar.decode(bytes(message.data), decode_choices=False)  # type: ignore[attr-defined]
    except Exception:  # a malformed frame in the log: no TTC from it
        return None
    closing = -float(values["ObjectRelativeSpeed"])
    if not (values["ObjectValid"] and values["ObjectInPath"]) or closing <= 0.0:
        return None
    return float(values["ObjectDistance"]) / closing


def replay_log(
    path: Path,
    bus: can.BusABC,
    *,
    speed: float = 1.0,
    settle_s: float = SETTLE_S,
    target: Target = NO_OBSTACLE,
) -> SuiteResult:
    """Send the frames of a candump/ASC/BLF log at recorded pace (``speed`` times faster).

    Open loop: the log does not react to the agent. The agent's brake requests are counted;
    a drive log that carries no obstacle must cause none (``target``). Brake request frames in
    the log itself (a recorded agent's) and error frames are not replayed. ``min_ttc_s`` is the
    smallest time to collision the log's radar frames report (gap over closing speed).
    """
    if not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    database = dbc.load_vehicle_dbc()
    radar = database.get_message_by_name(dbc.RADAR_OBJECT)
    watcher = BrakeActivations()
    latency = RoundTripLatency()
    min_ttc: float | None = None

    def receive_until(deadline: float) -> None:
        while (remaining := deadline - time.monotonic()) > 0:
            message = bus.recv(timeout=remaining)
            now = time.monotonic()
            if message is not None and watcher.frame(message, now):
                latency.brake_received(now)
            watcher.expire(now)

    drain(bus)
    start_wall = time.monotonic()
    first: float | None = None
    last_offset = 0.0
    try:
        for message in can.LogReader(str(path)):
            if message.is_error_frame or message.arbitration_id == watcher.message.frame_id:
                continue
            first = message.timestamp if first is None else first
            last_offset = (message.timestamp - first) / speed
            receive_until(start_wall + last_offset)
            outgoing = can.Message(
                arbitration_id=message.arbitration_id,
                data=message.data,
                is_extended_id=message.is_extended_id,
                is_remote_frame=message.is_remote_frame,
                is_fd=message.is_fd,
                dlc=message.dlc,
            )
            bus.send(outgoing, timeout=0.05)
            if message.arbitration_id == radar.frame_id and not message.is_remote_frame:
                latency.radar_sent(time.monotonic())
                ttc = _radar_ttc(message, radar)
                if ttc is not None and (min_ttc is None or ttc < min_ttc):
                    min_ttc = ttc
        receive_until(time.monotonic() + BRAKE_REQUEST_TIMEOUT_S)
    finally:
        drain(bus, settle_s)
    misses = target.misses(False, None, watcher.activations)
    return SuiteResult(
        name=f"replay:{path.name}",
        collision=None,
        impact_speed_kmh=None,
        min_ttc_s=None if min_ttc is None or not math.isfinite(min_ttc) else min_ttc,
        brake_activations=watcher.activations,
        false_activation=watcher.activations > 0 and not target.expects_obstacle,
        max_decision_latency_ms=latency.max_ms,
        category="replay",
        target=target.description,
        target_met=not misses,
        misses=misses,
        p50_decision_latency_ms=latency.p50_ms,
        latency_samples=len(latency.samples_s),
        min_gap_m=None,
        brake_frames=watcher.frames,
        duration_s=last_offset * speed,
        max_pacing_lag_ms=None,
    )
