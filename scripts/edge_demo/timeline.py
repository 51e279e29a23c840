"""What the demo saw: the vehicle trace, the agent's health and the cloud, over time.

:class:`Timeline` tails the simulator's trace file and takes a :class:`Tick` every refresh
(0.5 s); the live view renders the newest tick, the summary and the plot read the whole.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.health import HealthFile, NoAgentRunning

STAGES = {0: "none", 1: "warning", 2: "partial brake", 3: "FULL BRAKE"}


@dataclass
class Tick:
    """One refresh: the figures the live view shows."""

    wall: float
    vehicle: dict[str, Any]
    agent_state: str
    fast_path: dict[str, Any]
    can_frames_per_s: float | None
    can_source: str
    spool_records: int | None
    spool_bytes: int | None
    link: str
    cloud_batches: int
    cloud_events: int
    standin: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timeline:
    """Trace samples (10 Hz), refresh ticks (2 Hz) and notable moments, since ``started``."""

    trace_path: Path
    state_dir: Path
    started: float = field(default_factory=time.time)
    samples: list[dict[str, Any]] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    moments: list[tuple[float, str]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    health: dict[str, Any] = field(default_factory=dict)
    _offset: int = 0
    _frames: tuple[float, int] | None = None
    _fault: str = ""

    def note(self, text: str, wall: float | None = None) -> None:
        """Remember a notable moment (shown in the view, the summary and the plot)."""
        self.moments.append(((wall or time.time()) - self.started, text))

    def read_trace(self) -> None:
        """Take the trace lines written since the last call."""
        try:
            with self.trace_path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        complete = chunk.rfind(b"\n") + 1
        self._offset += complete
        for raw in chunk[:complete].splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if "result" in line:
                self.result = line["result"]
            else:
                self._observe(line)
                self.samples.append(line)

    def _observe(self, line: dict[str, Any]) -> None:
        before = self.samples[-1] if self.samples else None
        if before is None:
            return
        stage, previous = line["stage"], before["stage"]
        if stage is not None and stage != previous and (previous is not None or stage > 0):
            ttc = f", TTC {line['ttc_s']:.1f} s" if line["ttc_s"] is not None else ""
            what = "brake released" if stage == 0 else STAGES.get(stage, str(stage))
            self.note(f"fast path: {what} at {line['speed_kmh']:.0f} km/h{ttc}", line["wall"])
        if line["radar"] != before["radar"]:
            text = "radar frames back" if line["radar"] else "radar dropout: no radar frames"
            self.note(text, line["wall"])
        if line["collision"] and not before["collision"]:
            self.note("COLLISION", line["wall"])

    def _observe_fault(self, fast_path: dict[str, Any]) -> None:
        fault = fast_path.get("fault")
        if not isinstance(fault, str) or fault in (self._fault, "starting"):
            return
        if fault:
            self.note(f"fast path fault: {fault} (no braking on a stale sensor)")
        elif self._fault:
            self.note("fast path fault cleared")
        self._fault = fault

    def refresh(
        self,
        link: str,
        cloud_batches: int,
        cloud_events: int,
        standin: dict[str, Any] | None = None,
    ) -> Tick:
        """Read the trace and the health file; record and return a tick."""
        now = time.time()
        self.read_trace()
        try:
            self.health = HealthFile(self.state_dir).read(now)
            agent_state = str(self.health["agent"]["state"])
            if self.health["agent"].get("ready"):
                agent_state += " (ready)"
        except NoAgentRunning:
            agent_state = "not running"
        modules = self.health.get("modules", {}) if agent_state != "not running" else {}
        fast = modules.get("fast-path", {})
        spool = self.health.get("spool", {}) if modules else {}
        rate, source = self._frame_rate(now, modules)
        self._observe_fault(fast.get("details", {}))
        tick = Tick(
            wall=now,
            vehicle=self.samples[-1] if self.samples else {},
            agent_state=agent_state,
            fast_path={"state": fast.get("state", "-"), **fast.get("details", {})},
            can_frames_per_s=rate,
            can_source=source,
            spool_records=spool.get("records"),
            spool_bytes=spool.get("bytes"),
            link=link,
            cloud_batches=cloud_batches,
            cloud_events=cloud_events,
            standin=dict(standin or {}),
        )
        self.ticks.append(tick)
        return tick

    def _frame_rate(self, now: float, modules: dict[str, Any]) -> tuple[float | None, str]:
        reader = modules.get("can-reader", {}).get("details", {})
        for key in ("frames_per_s", "rate_fps"):
            if isinstance(reader.get(key), int | float):
                return float(reader[key]), "CAN reader"
        if not self.samples:
            return None, "simulator"
        sent = int(self.samples[-1]["frames_sent"])
        previous, self._frames = self._frames, (now, sent)
        if previous is None or now - previous[0] <= 0:
            return None, "simulator"
        return (sent - previous[1]) / (now - previous[0]), "sent by the simulator"
