"""A scenario run on a CAN bus: physics, frames out, brake requests in (closed loop).

:class:`SimulatorSession` advances in simulated time only when told to (:meth:`~SimulatorSession.
step`, :meth:`~SimulatorSession.advance`), so a test with python-can's in-process ``virtual`` bus
is fully deterministic; :mod:`edge_agent.simulator.runner` paces it against the wall clock.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import can

from edge_agent.simulator import dbc
from edge_agent.simulator.attack_plan import LiveAttack
from edge_agent.simulator.body import BodyModel, BodySignals
from edge_agent.simulator.faults import FaultInjector, FaultPlan
from edge_agent.simulator.frames import VehicleFrames
from edge_agent.simulator.radar import Radar
from edge_agent.simulator.results import RunMetrics, ScenarioResult
from edge_agent.simulator.scenario import Scenario
from edge_agent.simulator.vehicle import AEB_ACTIVE_MPS2, VehicleState, step

TICK_S = 0.005
"""Physics step: every cycle time of the DBC is a multiple of it."""
BRAKE_REQUEST_TIMEOUT_S = 0.2
"""A brake request not refreshed for this long is dropped (a dead agent must not brake forever)."""
MAX_FRAMES_PER_POLL = 10_000


@dataclass(frozen=True, slots=True)
class BrakeRequestEvent:
    """An AebBrakeRequest frame the vehicle received: the hook for latency measurements.

    Monotonic times are ``time.monotonic()`` in the simulator's process; ``last_radar_*`` say
    when the newest RadarObject frame went out before this request arrived.
    """

    sim_time_s: float
    received_monotonic: float
    deceleration_mps2: float
    stage: int
    counter: int
    last_radar_sent_monotonic: float | None
    last_radar_sim_time_s: float | None


BrakeRequestObserver = Callable[[BrakeRequestEvent], None]
StepObserver = Callable[[float, bool, BodySignals], None]
FrameSink = Callable[[can.Message], None]


class SimulatorSession:
    """One run of ``scenario``: steps the physics and talks to ``bus`` (optional).

    Every :meth:`step` first takes the brake requests waiting on the bus, then advances the world
    by ``tick_s`` and sends the frames that fall due. ``faults`` add to the scenario's own.
    ``frame_sink`` sees every frame sent or received (for recording), stamped ``epoch`` plus the
    simulated time. The same ``seed`` gives the same frames.
    """

    def __init__(
        self,
        scenario: Scenario,
        bus: can.BusABC | None = None,
        *,
        seed: int = 0,
        tick_s: float = TICK_S,
        faults: FaultPlan | None = None,
        duration_s: float | None = None,
        brake_request_timeout_s: float = BRAKE_REQUEST_TIMEOUT_S,
        frame_sink: FrameSink | None = None,
        epoch: float | None = None,
    ) -> None:
        self.scenario = scenario
        self.bus = bus
        self.tick_s = tick_s
        self.duration_s = scenario.duration_s if duration_s is None else duration_s
        self.brake_request_timeout_s = brake_request_timeout_s
        self.frame_sink = frame_sink
        self.epoch = time.time() if epoch is None else epoch
        self.state: VehicleState = scenario.initial_state()
        self.brake_request_observers: list[BrakeRequestObserver] = []
        # Called after every step with (time_s, radar sending, body signals): the simulated
        # ECUs' fault monitor (edge_agent.simulator.ecu_faults) listens here.
        self.step_observers: list[StepObserver] = []
        database = dbc.load_vehicle_dbc()
        self._brake_message = database.get_message_by_name(dbc.AEB_BRAKE_REQUEST)
        self._radar_id = int(database.get_message_by_name(dbc.RADAR_OBJECT).frame_id)
        self._body = BodyModel(scenario.body, random.Random(f"{seed}-body"))
        self._frames = VehicleFrames(
            database,
            Radar(scenario.radar, random.Random(f"{seed}-radar")),
            random.Random(f"{seed}-sensors"),
        )
        plan = scenario.faults if faults is None else scenario.faults.combined(faults)
        self._faults = FaultInjector(plan, self._frames.frame_ids, random.Random(f"{seed}-faults"))
        self.attack = (
            None
            if scenario.attack is None
            else LiveAttack(scenario.attack, random.Random(f"{seed}-attack"))
        )
        """The scenario's attacker, if any (its ``labels`` say what it did when)."""
        self.metrics = RunMetrics()
        self.brake_request_mps2 = 0.0
        self._request_sim_time_s: float | None = None
        self._last_radar: tuple[float, float] | None = None
        self._last_counter: int | None = None
        self._stage = 0
        self.first_stage_s: dict[int, float] = {}
        """When each brake stage was first requested (partial counts from partial or above)."""
        self.brake_frames = self.bad_brake_frames = self.counter_errors = self.warnings = 0
        self.frames_sent = self.send_errors = 0

    @property
    def time_s(self) -> float:
        """Simulated seconds since the start."""
        return self.state.time_s

    @property
    def finished(self) -> bool:
        """Whether the run is over: its duration elapsed or the ego collided."""
        return self.state.collision is not None or self.time_s >= self.duration_s - 1e-9

    @property
    def fault_plan(self) -> FaultPlan:
        """The faults this run injects (scenario's plus the caller's)."""
        return self._faults.plan

    def step(self) -> None:
        """Take waiting brake requests, advance one tick, send the frames due (no-op at the end)."""
        if self.finished:
            return
        self.poll()
        request = self.current_brake_request()
        self.state = step(self.state, self.tick_s, request)
        body = self._body.update(self.state, self.tick_s)
        self.metrics.observe(self.state, request)
        time_s = self.time_s
        bus_off = self._faults.bus_off(time_s)
        frames = self._frames.due(self.state, body, silent=bus_off)
        if self.attack is not None:
            frames = self.attack.frames(time_s, self.tick_s, frames)
        frames += self._faults.frames(time_s, self.tick_s)
        for frame in frames:
            self._send(frame)
        if self.step_observers:
            radar_sending = not bus_off and not self.scenario.radar.dropouts.contains(time_s)
            for observer in self.step_observers:
                observer(time_s, radar_sending, body)

    def advance(self, seconds: float) -> None:
        """Step until ``seconds`` more simulated time has passed or the run is over."""
        end = self.time_s + seconds - 1e-9
        while not self.finished and self.time_s < end:
            self.step()

    def run(self) -> ScenarioResult:
        """Step to the end as fast as possible and return the result."""
        while not self.finished:
            self.step()
        return self.result()

    def result(self) -> ScenarioResult:
        """The run's result so far."""
        return self.metrics.result(
            self.scenario,
            self.state,
            brake_frames=self.brake_frames,
            warnings=self.warnings,
            frames_sent=self.frames_sent,
            send_errors=self.send_errors,
            first_stage_s=self.first_stage_s,
        )

    def current_brake_request(self) -> float:
        """The deceleration the AEB asks for now (zero once the last request timed out)."""
        if self._request_sim_time_s is None:
            return 0.0
        if self.time_s - self._request_sim_time_s > self.brake_request_timeout_s + 1e-9:
            self.brake_request_mps2, self._request_sim_time_s = 0.0, None
        return self.brake_request_mps2

    def poll(self) -> int:
        """Take every frame already waiting on the bus; return how many there were."""
        if self.bus is None:
            return 0
        count = 0
        while count < MAX_FRAMES_PER_POLL:
            message = self.bus.recv(timeout=0.0)
            if message is None:
                break
            self.receive(message)
            count += 1
        return count

    def wait(self, seconds: float) -> None:
        """Block up to ``seconds`` of wall time for frames, handling each as it arrives."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self.bus is None:
                time.sleep(remaining)
                return
            message = self.bus.recv(timeout=remaining)
            if message is not None:
                self.receive(message)

    def receive(self, message: can.Message) -> None:
        """Handle one received frame: an AebBrakeRequest sets the brake request."""
        if message.arbitration_id != self._brake_message.frame_id or message.is_error_frame:
            return
        if message.is_remote_frame or message.is_extended_id:
            return
        try:
            signals = self._brake_message.decode(bytes(message.data), decode_choices=False)
        except Exception:
            self.bad_brake_frames += 1
            return
        self._record(message, rx=True)
        self.brake_frames += 1
        counter, stage = int(signals["AebCounter"]), int(signals["AebStage"])
        if self._last_counter is not None and counter != (self._last_counter + 1) % 16:
            self.counter_errors += 1
        self._last_counter = counter
        if stage == 1 and self._stage != 1:
            self.warnings += 1
        self._stage = stage
        for reached in range(2, stage + 1):
            self.first_stage_s.setdefault(reached, self.time_s)
        deceleration = max(0.0, float(signals["AebDecelRequest"]))
        self.brake_request_mps2 = deceleration if deceleration > AEB_ACTIVE_MPS2 else 0.0
        self._request_sim_time_s = self.time_s
        event = BrakeRequestEvent(
            sim_time_s=self.time_s,
            received_monotonic=time.monotonic(),
            deceleration_mps2=deceleration,
            stage=stage,
            counter=counter,
            last_radar_sent_monotonic=None if self._last_radar is None else self._last_radar[0],
            last_radar_sim_time_s=None if self._last_radar is None else self._last_radar[1],
        )
        for observer in self.brake_request_observers:
            observer(event)

    def _send(self, frame: can.Message) -> None:
        frame.timestamp = self.epoch + self.time_s
        self._record(frame, rx=False)
        if frame.arbitration_id == self._radar_id and not frame.is_error_frame:
            self._last_radar = (time.monotonic(), self.time_s)
        if self.bus is None:
            self.frames_sent += 1
            return
        try:
            self.bus.send(frame, timeout=0.05)
        except can.CanError:
            self.send_errors += 1
        else:
            self.frames_sent += 1

    def _record(self, frame: can.Message, *, rx: bool) -> None:
        if self.frame_sink is None:
            return
        if rx:
            frame = can.Message(
                timestamp=self.epoch + self.time_s,
                arbitration_id=frame.arbitration_id,
                data=frame.data,
                is_extended_id=frame.is_extended_id,
                is_rx=True,
            )
        self.frame_sink(frame)


class BusSetupError(Exception):
    """The bus cannot be opened; the message says why and what to do."""


def inside_network_namespace() -> bool:
    """Whether this process runs inside a named network namespace (``ip netns exec``)."""
    try:
        own = os.stat("/proc/self/ns/net").st_ino
        named = Path("/run/netns")
        return any(entry.stat().st_ino == own for entry in named.iterdir())
    except OSError:
        return False


def open_bus(interface: str, channel: str | None) -> can.BusABC:
    """Open a python-can bus for the simulator; refuse ``udp_multicast`` outside a namespace."""
    if interface == "udp_multicast" and not inside_network_namespace():
        raise BusSetupError(
            "udp_multicast sends to the real network: run inside a network namespace "
            "(ip netns exec NAME edge-agent-sim ...), see docs/simulator.md"
        )
    try:
        return can.Bus(interface=interface, channel=channel)
    except (OSError, can.CanError, ValueError, ImportError) as error:
        hint = ""
        if interface == "socketcan":
            hint = (
                f" (create it: sudo ip link add {channel} type vcan && "
                f"sudo ip link set {channel} up)"
            )
        raise BusSetupError(f"cannot open {interface} channel {channel}: {error}{hint}") from None
