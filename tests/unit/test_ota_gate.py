"""The health gate and the parked guard, driven with snapshots and an injected clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edge_agent.modules.ota.config import GateConfig, GuardConfig
from edge_agent.modules.ota.guard import ParkedGuard
from edge_agent.ota.gate import GateCriteria, HealthGate, spool_probe


def snapshot(frames: int, p99: float, bench: str = "running") -> dict[str, Any]:
    return {
        "modules": {
            "ota": {"state": "running", "details": {}},
            "can-reader": {"state": "running", "details": {"frames": {"can0": frames, "can1": 1}}},
            "fast-path": {"state": bench, "details": {"latency_ms": {"p99_ms": p99}}},
        }
    }


CRITERIA = GateCriteria(
    frames_module="can-reader",
    latency_module="fast-path",
    p99_budget_ms=5.0,
    stable_for_s=2.0,
)


def test_gate_passes_after_everything_held_for_the_stable_time() -> None:
    gate = HealthGate(CRITERIA, own_module="ota")
    assert not gate.observe(snapshot(10, 1.0), 0.0)
    assert gate.last_problems == ["waiting for CAN frames to flow"]
    assert not gate.observe(snapshot(20, 1.0), 1.0)
    assert gate.last_problems == []
    assert not gate.observe(snapshot(30, 1.0), 2.5)
    assert gate.observe(snapshot(40, 1.0), 3.1)


def test_each_failing_check_names_itself_and_resets_the_clock() -> None:
    gate = HealthGate(CRITERIA, own_module="ota")
    gate.observe(snapshot(10, 1.0), 0.0)
    gate.observe(snapshot(20, 1.0), 1.0)
    assert not gate.observe(snapshot(20, 9.0, bench="backing-off"), 4.5, "spool full")
    assert gate.last_problems == [
        "module fast-path is backing-off",
        "CAN frames not flowing (can-reader)",
        "fast-path p99 latency 9 ms over 5 ms",
        "spool full",
    ]
    assert not gate.observe(snapshot(30, 1.0), 5.0)
    assert gate.observe(snapshot(40, 1.0), 7.0)


def test_required_modules_only_when_listed() -> None:
    gate = HealthGate(GateCriteria(required_modules=("absent",), stable_for_s=0.0))
    assert not gate.observe(snapshot(1, 1.0), 0.0)
    assert gate.last_problems == ["module absent is absent"]


def test_the_installer_config_is_the_gate_criteria() -> None:
    # One model: the [modules.ota.config.gate] table goes to the gate as it is.
    config = GateConfig.model_validate(
        {"required_modules": ["absent"], "stable_for_s": 0, "timeout_s": 30}
    )
    assert config.required_modules == ("absent",)
    gate = HealthGate(config)
    assert not gate.observe(snapshot(1, 1.0), 0.0)
    assert gate.last_problems == ["module absent is absent"]
    with pytest.raises(ValidationError, match="frames_stall_s"):
        GateConfig.model_validate({"frames_stall_s": 0})
    with pytest.raises(ValidationError, match="unknown_check"):
        GateCriteria.model_validate({"unknown_check": 1})


def test_spool_probe(tmp_path: Path) -> None:
    assert spool_probe(tmp_path / "spool") == ""
    assert list((tmp_path / "spool").iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "not writable" in spool_probe(blocker / "spool")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_guard_waits_for_standstill_long_enough() -> None:
    clock = FakeClock()
    guard = ParkedGuard(GuardConfig(parked_for_s=5.0), clock)
    assert guard.verdict() == (
        False,
        "vehicle state unknown (no EgoSpeed on can/+/decoded/EgoMotion)",
    )
    guard.observe(42.0)
    assert guard.verdict() == (False, "vehicle moving (speed 42.0 km/h)")
    guard.observe(0.0)
    clock.now += 1.0
    guard.observe(0.05)
    assert guard.verdict() == (False, "vehicle stopped for 1.0 s of 5 s")
    clock.now += 4.0
    guard.observe(0.0)
    assert guard.verdict() == (True, "")
    clock.now += 3.0  # no fresh speed: unknown again
    assert guard.verdict() == (False, "vehicle state unknown (EgoSpeed is stale)")


def test_disabled_guard_always_allows() -> None:
    assert ParkedGuard(GuardConfig(enabled=False), FakeClock()).verdict() == (True, "")
