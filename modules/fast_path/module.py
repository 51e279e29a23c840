"""The fast-path module: a decision thread with its own CAN socket, in a process of its own.

The thread blocks on its CAN socket, and for every radar frame decides and sends the brake
request frame at once, then measures the latency from the frame's receive timestamp to the
completed send. The event loop only reports: events (stage and fault changes) and health.
Nothing the rest of the agent does reaches this thread: it is in another process
(``isolation = process``), owns its socket, and hands events over without waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

import can

from edge_agent.bus import Priority
from edge_agent.can.resources import resolve_data_path
from edge_agent.metrics import Sample
from edge_agent.module_api import Isolation, Module, ModuleContext
from edge_agent.modules.fast_path.codec import CodecError, FastPathCodec
from edge_agent.modules.fast_path.config import FastPathConfig
from edge_agent.modules.fast_path.latency import LatencyWindow
from edge_agent.modules.fast_path.metrics import fast_path_metrics
from edge_agent.modules.fast_path.policy import (
    Decision,
    EgoSample,
    PolicyConfig,
    PolicyState,
    RadarSample,
    decide,
)

EVENT_QUEUE = 1000


class CanChannelUnavailable(RuntimeError):
    """The fast path's own CAN channel cannot be opened; the message says what to check."""


HEALTH_PERIOD_S = 1.0


class FastPathModule(Module[FastPathConfig]):
    """Obstacle/brake fast path: time-to-collision staging with its own CAN socket."""

    name = "fast-path"
    version = "1.0.0"
    config_model = FastPathConfig
    isolation = Isolation.PROCESS
    # The brake path: a config change never restarts it while the vehicle moves.
    restart_only_when_parked = True

    @classmethod
    def health_metrics(cls, details: Mapping[str, Any]) -> Iterable[Sample]:
        """Prometheus metrics from the module's health details (see its ``metrics`` file)."""
        return fast_path_metrics(details)

    def __init__(self, config: FastPathConfig, context: ModuleContext) -> None:
        super().__init__(config, context)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def setup(self) -> None:
        """Load the DBC and open the CAN channel (filtered to the radar and ego frames)."""
        dbc_path = resolve_data_path(self.config.dbc)
        self.codec = await asyncio.to_thread(FastPathCodec, dbc_path, self.config.signals)
        self.policy: PolicyConfig = self.config.policy.to_policy()
        channel = self.config.can
        radar_id, ego_id = self.codec.input_ids
        try:
            self.can_bus = can.Bus(
                interface=channel.interface,
                channel=channel.channel,
                bitrate=channel.bitrate,
                fd=channel.fd,
                receive_own_messages=False,
                can_filters=[
                    {"can_id": radar_id, "can_mask": 0x7FF, "extended": False},
                    {"can_id": ego_id, "can_mask": 0x7FF, "extended": False},
                ],
                **channel.options,
            )
        except (OSError, can.CanError, ValueError, NotImplementedError) as error:
            raise CanChannelUnavailable(
                f"cannot open CAN channel {channel.channel!r} on interface "
                f"{channel.interface!r}: {error}; is the link up (ip link show "
                f"{channel.channel}) and does the interface name exist?"
            ) from None
        self.context.on_stop(self.can_bus.shutdown)
        self.latency = LatencyWindow()
        self.counters = {
            "decisions": 0,
            "brake_frames": 0,
            "send_failures": 0,
            "bad_frames": 0,
            "events_dropped": 0,
        }
        self.last: Decision | None = None
        self.send_fault = ""
        self._events: deque[dict[str, Any]] = deque(maxlen=EVENT_QUEUE)
        self._wake = asyncio.Event()

    async def start(self) -> None:
        """Start the decision thread; ready once it runs."""
        loop = asyncio.get_running_loop()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._decide_forever, args=(loop, started), name="fast-path.decide", daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(started.wait, 5.0)

    # -- the decision thread -----------------------------------------------------------------

    def _decide_forever(self, loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        radar_id, ego_id = self.codec.input_ids
        state = PolicyState()
        ego: EgoSample | None = None
        next_tick = time.monotonic()
        started.set()
        while not self._stop.is_set():
            frame = self.can_bus.recv(timeout=self.config.tick_s)
            now = time.monotonic()
            radar: RadarSample | None = None
            if frame is not None and not frame.is_error_frame and not frame.is_remote_frame:
                try:
                    if frame.arbitration_id == ego_id:
                        ego = self.codec.ego_sample(bytes(frame.data), now)
                    elif frame.arbitration_id == radar_id:
                        radar = self.codec.radar_sample(bytes(frame.data), now)
                except CodecError:
                    self.counters["bad_frames"] += 1
            if radar is None and now < next_tick:
                continue
            next_tick = now + self.config.tick_s
            state, decision = decide(state, now, radar, ego, self.policy)
            self._act(decision, frame if radar is not None else None, loop, ego)

    def _act(
        self,
        decision: Decision,
        trigger: can.Message | None,
        loop: asyncio.AbstractEventLoop,
        ego: EgoSample | None,
    ) -> None:
        payload = self.codec.encode_brake(decision.stage, decision.decel_request_mps2)
        frame = can.Message(
            arbitration_id=self.codec.brake.frame_id, data=payload, is_extended_id=False
        )
        send_fault = ""
        try:
            self.can_bus.send(frame, timeout=0.005)
            self.counters["brake_frames"] += 1
        except can.CanError as error:
            self.counters["send_failures"] += 1
            send_fault = f"brake frame send failed: {error}"
        if trigger is not None:
            self.latency.record(time.monotonic(), time.time() - trigger.timestamp)
        self.counters["decisions"] += 1
        self.last = decision
        event: dict[str, Any] | None = None
        if send_fault != self.send_fault:
            self.send_fault = send_fault
            event = {"kind": "fault", "fault": send_fault or "cleared", "source": "can-send"}
        elif decision.stage_changed or decision.fault_changed:
            event = {
                "kind": "fault" if decision.fault_changed else "brake",
                "stage": decision.stage.name.lower(),
                "decel_request_mps2": round(decision.decel_request_mps2, 2),
                "ttc_s": None if decision.ttc_s is None else round(decision.ttc_s, 3),
                "fault": decision.fault,
                "ego_speed_mps": None if ego is None else round(ego.speed_mps, 2),
            }
        if event is not None:
            event["wall_time"] = time.time()
            if len(self._events) == self._events.maxlen:
                self.counters["events_dropped"] += 1
            self._events.append(event)
            loop.call_soon_threadsafe(self._wake.set)

    # -- the event loop side -----------------------------------------------------------------

    async def run(self) -> None:
        """Publish events as they come and refresh health every second."""
        next_health = 0.0
        while True:
            if self._thread is None or not self._thread.is_alive():
                raise RuntimeError("the decision thread died")
            while self._events:
                await self.context.bus.publish(
                    self.config.event_topic,
                    self._events.popleft(),
                    priority=Priority.CONTROL,
                    sender=self.name,
                )
            now = time.monotonic()
            if now >= next_health:
                self._report(now)
                next_health = now + HEALTH_PERIOD_S
            self._wake.clear()
            try:
                async with asyncio.timeout(HEALTH_PERIOD_S):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _report(self, now: float) -> None:
        summary = self.latency.summary(now)
        health = self.context.health
        health.set_detail("latency_ms", asdict(summary))
        histogram = self.latency.histogram()
        health.set_detail(
            "latency_histogram",
            {
                "bounds_s": list(histogram.bounds_s),
                "counts": list(histogram.counts),
                "sum_s": histogram.sum_s,
            },
        )
        for key, value in self.counters.items():
            health.set_detail(key, value)
        last = self.last
        health.set_detail("stage", last.stage.name.lower() if last else "none")
        health.set_detail("policy", asdict(self.policy))
        health.set_detail("latency_budget_ms", self.config.latency_budget_ms)
        fault = self.send_fault or (last.fault if last else "starting")
        health.set_detail("fault", fault)
        if fault:
            health.degraded(fault)
        elif summary.count and summary.p99_ms > self.config.latency_budget_ms:
            health.degraded(
                f"p99 latency {summary.p99_ms} ms over {self.config.latency_budget_ms} ms"
            )
        else:
            health.healthy()

    async def reconfigure(self, config: FastPathConfig) -> bool:
        """Thresholds, tick and budget change in place; a new DBC, channel or signals restart.

        The decision thread reads the policy and the tick once per decision, so the next
        decision uses the new ones; the process and its CAN socket stay as they are.
        """
        keep = {"dbc", "can", "signals"}
        if self.config.model_dump(include=keep) != config.model_dump(include=keep):
            return False
        self.policy = config.policy.to_policy()
        self.config = config
        self.context.log.info("fast path reconfigured in place", policy=asdict(self.policy))
        self._report(time.monotonic())
        return True

    async def stop(self) -> None:
        """Stop the decision thread (it wakes within one tick) and close the channel."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)
