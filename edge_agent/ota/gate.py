"""The health gate a new version must pass before it is committed.

Fed with the supervisor's health snapshots (bus topic ``agent/health``), it checks that the
required modules run, that CAN frames keep arriving (a counter in a module's health details
rose within ``frames_stall_s``), that the fast path's p99 latency is within budget, and that
the spool directory is writable. All checks must hold continuously for ``stable_for_s`` to pass.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from edge_agent.config.classes import privileged
from edge_agent.module_api import ModuleState


class GateCriteria(BaseModel):
    """What the gate checks. ``None`` turns a check off.

    The OTA installer's ``[modules.ota.config.gate]`` table extends this model with its own
    limits (time-out, boot attempts), so the options are validated and documented once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    required_modules: tuple[str, ...] | None = privileged(
        default=None, description="Modules that must run; default: every configured module."
    )
    frames_module: str | None = privileged(default=None, description="e.g. can-reader")
    frames_detail: str = privileged("frames")
    frames_stall_s: float = privileged(
        default=3.0, gt=0, description="No new frame this long: fail."
    )
    latency_module: str | None = privileged(default=None, description="e.g. fast-path")
    latency_detail: str = privileged("latency_ms.p99_ms")
    p99_budget_ms: float = privileged(default=10.0, gt=0)
    stable_for_s: float = privileged(default=5.0, ge=0)


def detail(details: dict[str, Any], dotted: str) -> float | None:
    """A number at ``dotted`` in a module's details; a dict of numbers is summed (per bus)."""
    value: Any = details
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, dict):
        numbers = [v for v in value.values() if isinstance(v, int | float)]
        return float(sum(numbers)) if numbers else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def spool_probe(directory: Path) -> str:
    """Write, fsync and remove a probe file in ``directory``; return "" or why it failed."""
    probe = directory / f".ota-gate-probe-{uuid.uuid4().hex}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as error:
        return f"spool directory {directory} is not writable: {error.strerror or error}"
    return ""


@dataclass
class HealthGate:
    """Decides, snapshot by snapshot, whether the trial version is healthy."""

    criteria: GateCriteria
    own_module: str = ""
    last_frames: float | None = None
    frames_rose_at: float | None = None
    healthy_since: float | None = None
    last_problems: list[str] = field(default_factory=list)

    def problems(self, snapshot: dict[str, Any], now: float, spool_problem: str = "") -> list[str]:
        """What is wrong in ``snapshot`` at monotonic ``now`` (empty: all checks hold)."""
        found: list[str] = []
        modules: dict[str, Any] = snapshot.get("modules", {})
        required = self.criteria.required_modules
        names = list(modules) if required is None else list(required)
        for name in names:
            if name == self.own_module:
                continue
            state = modules.get(name, {}).get("state", "absent")
            if state != ModuleState.RUNNING:
                found.append(f"module {name} is {state}")
        if self.criteria.frames_module is not None:
            details = modules.get(self.criteria.frames_module, {}).get("details", {})
            frames = detail(details, self.criteria.frames_detail)
            if frames is None:
                found.append(f"no CAN frame counter from {self.criteria.frames_module}")
            else:
                found.extend(self._frames_problem(frames, now))
        if self.criteria.latency_module is not None:
            details = modules.get(self.criteria.latency_module, {}).get("details", {})
            p99 = detail(details, self.criteria.latency_detail)
            if p99 is None:
                found.append(f"no latency figure from {self.criteria.latency_module}")
            elif p99 > self.criteria.p99_budget_ms:
                found.append(
                    f"{self.criteria.latency_module} p99 latency {p99:g} ms over "
                    f"{self.criteria.p99_budget_ms:g} ms"
                )
        if spool_problem:
            found.append(spool_problem)
        return found

    def _frames_problem(self, frames: float, now: float) -> list[str]:
        previous, self.last_frames = self.last_frames, frames
        if previous is not None and frames > previous:
            self.frames_rose_at = now
        if self.frames_rose_at is None:
            return ["waiting for CAN frames to flow"]
        if now - self.frames_rose_at > self.criteria.frames_stall_s:
            return [f"CAN frames not flowing ({self.criteria.frames_module})"]
        return []

    def observe(self, snapshot: dict[str, Any], now: float, spool_problem: str = "") -> bool:
        """Feed one snapshot taken at monotonic ``now``; True once healthy for long enough."""
        self.last_problems = self.problems(snapshot, now, spool_problem)
        if self.last_problems:
            self.healthy_since = None
            return False
        if self.healthy_since is None:
            self.healthy_since = now
        return now - self.healthy_since >= self.criteria.stable_for_s
