"""systemd/edge-agent-launch-guard: the shell script that rolls back a slot that cannot start."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from edge_agent.ota.durable import write_json_atomic
from edge_agent.ota.layout import OtaLayout
from edge_agent.ota.state import OtaState, Phase, StateStore

GUARD = Path(__file__).resolve().parents[2] / "systemd" / "edge-agent-launch-guard"


def vehicle(tmp_path: Path, phase: Phase, *, active: str = "b", from_slot: str = "a") -> OtaLayout:
    layout = OtaLayout.for_state_dir(tmp_path)
    for slot in ("a", "b"):
        layout.slot_dir(slot).mkdir(parents=True)
        (layout.slot_dir(slot) / ".complete").write_text("")
    layout.switch_to(active)
    state = OtaState(phase=phase, from_slot=from_slot, to_slot="b", job_id="j", version="2.0.0")
    StateStore(layout.state_file).save(state)
    return layout


def guard(layout: OtaLayout, limit: int = 3) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["/bin/sh", str(GUARD), str(layout.root.parent), str(limit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_counts_trial_starts_then_restores_the_previous_slot(tmp_path: Path) -> None:
    layout = vehicle(tmp_path, Phase.SWITCHED)
    for start in (1, 2, 3):
        guard(layout)
        assert layout.launch_count.read_text().strip() == str(start)
        assert layout.active_slot() == "b"
    result = guard(layout)  # the fourth start: three never reached the agent
    assert layout.active_slot() == "a"
    assert layout.current.is_symlink()
    assert not layout.launch_count.exists()
    reason = json.loads(layout.launch_failed.read_text())["reason"]
    assert "did not start" in reason
    assert "restoring slot a" in result.stderr
    # What the restored agent sees: the reason, once; the counter gone.
    assert layout.take_launch_failure() == reason


def test_the_agent_resets_the_count_by_starting(tmp_path: Path) -> None:
    layout = vehicle(tmp_path, Phase.SWITCHED)
    guard(layout)
    guard(layout)
    assert layout.take_launch_failure() is None  # the agent ran: counter cleared
    for _ in range(3):
        guard(layout)
    assert layout.active_slot() == "b"
    assert not layout.launch_failed.exists()


def test_outside_a_trial_it_does_nothing_and_clears_a_stale_count(tmp_path: Path) -> None:
    layout = vehicle(tmp_path, Phase.COMMITTED)
    layout.launch_count.write_text("7\n")
    for _ in range(5):
        guard(layout)
    assert layout.active_slot() == "b"
    assert not layout.launch_count.exists()
    assert not layout.launch_failed.exists()


def test_no_slots_no_state_or_garbage_leave_everything_alone(tmp_path: Path) -> None:
    bare = OtaLayout.for_state_dir(tmp_path / "bare")
    guard(bare)  # no ota/ at all (RAUC or a slot-less install)
    layout = vehicle(tmp_path / "v", Phase.SWITCHED)
    layout.launch_count.write_text("not a number")
    guard(layout)
    assert layout.launch_count.read_text().strip() == "1"
    write_json_atomic(layout.state_file, {"phase": "switched", "from_slot": "z"})
    for _ in range(5):
        guard(layout)
    assert layout.active_slot() == "b"  # no valid previous slot: nothing to restore


def test_an_incomplete_previous_slot_is_never_restored(tmp_path: Path) -> None:
    layout = vehicle(tmp_path, Phase.SWITCHED)
    (layout.slot_dir("a") / ".complete").unlink()
    for _ in range(5):
        result = guard(layout)
    assert layout.active_slot() == "b"
    assert "no complete previous slot" in result.stderr
