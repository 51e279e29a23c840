"""Lock-step runs: the fast path's real decision code in closed loop, on simulated time.

:class:`FastPathInTheLoop` does what the fast-path module's decision thread does (decode the
radar and ego frames with the module's codec, ``decide()`` on every radar frame and on every
``tick_s`` timer tick, send the brake request frame each time), but takes the time from the
caller instead of the wall clock. Stepped together with a :class:`SimulatorSession` over a
python-can ``virtual`` bus, a run is deterministic and waits for nothing: a scenario of 8
simulated seconds takes about a tenth of a second of CPU. The suite against the real agent
(:mod:`edge_agent.simulator.suite`) runs the same scenarios in real time; the two must agree.
"""

from __future__ import annotations

import itertools

import can

from edge_agent.can.resources import resolve_data_path
from edge_agent.modules.fast_path.codec import CodecError, FastPathCodec
from edge_agent.modules.fast_path.config import FastPathConfig
from edge_agent.modules.fast_path.policy import (
    Decision,
    EgoSample,
    PolicyState,
    RadarSample,
    decide,
)
from edge_agent.simulator.can_io import SimulatorSession
from edge_agent.simulator.results import ScenarioResult
from edge_agent.simulator.scenario import Scenario

_channels = itertools.count()


class FastPathInTheLoop:
    """The fast path's decision loop on ``bus``, one :meth:`poll` at a time."""

    def __init__(self, bus: can.BusABC, config: FastPathConfig | None = None) -> None:
        self.bus = bus
        self.config = config or FastPathConfig()
        self.codec = FastPathCodec(resolve_data_path(self.config.dbc), self.config.signals)
        self.policy = self.config.policy.to_policy()
        self.state = PolicyState()
        self.ego: EgoSample | None = None
        self.next_tick = 0.0
        self.decisions: list[Decision] = []
        self.frames_sent = 0

    def poll(self, now: float) -> None:
        """Handle every frame waiting on the bus at time ``now``, then the timer tick if due."""
        radar_id, ego_id = self.codec.input_ids
        while (frame := self.bus.recv(timeout=0.0)) is not None:
            if frame.is_error_frame or frame.is_remote_frame:
                continue
            radar: RadarSample | None = None
            try:
                if frame.arbitration_id == ego_id:
                    self.ego = self.codec.ego_sample(bytes(frame.data), now)
                elif frame.arbitration_id == radar_id:
                    radar = self.codec.radar_sample(bytes(frame.data), now)
                else:
                    continue  # the module's kernel filter passes only these two ids
            except CodecError:
                continue
            if radar is not None or now >= self.next_tick:
                self._decide(now, radar)
        if now >= self.next_tick:
            self._decide(now, None)

    def _decide(self, now: float, radar: RadarSample | None) -> None:
        self.next_tick = now + self.config.tick_s
        self.state, decision = decide(self.state, now, radar, self.ego, self.policy)
        self.decisions.append(decision)
        payload = self.codec.encode_brake(decision.stage, decision.decel_request_mps2)
        self.bus.send(
            can.Message(
                arbitration_id=self.codec.brake.frame_id, data=payload, is_extended_id=False
            )
        )
        self.frames_sent += 1


def run_lockstep(
    scenario: Scenario, *, seed: int = 0, config: FastPathConfig | None = None
) -> ScenarioResult:
    """Run ``scenario`` in closed loop with the fast path's decision code, in simulated time."""
    channel = f"edge-agent-lockstep-{next(_channels)}"
    with (
        can.Bus(interface="virtual", channel=channel) as vehicle,
        can.Bus(interface="virtual", channel=channel) as agent,
    ):
        session = SimulatorSession(scenario, vehicle, seed=seed, epoch=0.0)
        fast_path = FastPathInTheLoop(agent, config)
        while not session.finished:
            session.step()
            fast_path.poll(session.time_s)
        return session.result()
