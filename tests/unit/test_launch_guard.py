"""systemd/edge-agent-launch-guard: the shell script that rolls back a slot that cannot start."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from edge_agent.durable import write_json_atomic
from edge_agent.ota.bundle import read_manifest
from edge_agent.ota.installers import ABInstaller
from edge_agent.ota.layout import LaunchFailure, OtaLayout
from edge_agent.ota.state import OtaState, Phase, StateStore
from fixtures.ota_world import make_bundle

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
    assert layout.take_launch_failure() == LaunchFailure("launch-failed", reason)


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


def installed_vehicle(tmp_path: Path) -> OtaLayout:
    """Slot a = 1.0.0 and slot b = 2.0.0 installed from real bundles; on trial of b."""
    layout = OtaLayout.for_state_dir(tmp_path / "state")
    installer = ABInstaller(layout)
    for slot, version in (("a", "1.0.0"), ("b", "2.0.0")):
        bundle = make_bundle(tmp_path / f"{version}.bundle", version, padding=4096)
        installer.install(bundle, slot, read_manifest(bundle), 1 << 30)
    layout.switch_to("b")
    state = OtaState(phase=Phase.SWITCHED, from_slot="a", to_slot="b", job_id="j", version="2.0.0")
    StateStore(layout.state_file).save(state)
    return layout


def test_an_intact_trial_slot_passes_its_file_check_and_is_counted(tmp_path: Path) -> None:
    layout = installed_vehicle(tmp_path)
    assert (layout.slot_dir("b") / ".complete").read_text() == "2.0.0\nfiles .files.sha256\n"
    guard(layout)
    assert layout.active_slot() == "b"
    assert layout.launch_count.read_text().strip() == "1"


def test_a_trial_slot_with_lost_bytes_is_restored_at_its_first_start(tmp_path: Path) -> None:
    layout = installed_vehicle(tmp_path)
    with (layout.slot_dir("b") / "padding.bin").open("r+b") as damaged:
        damaged.truncate(1000)  # what a power cut leaves of writes that never reached the disk
    result = guard(layout)
    assert layout.active_slot() == "a"
    assert "the trial slot b failed its file check" in result.stderr
    assert "restoring slot a" in result.stderr
    failure = layout.take_launch_failure()
    assert failure is not None
    assert failure.code == "slot-damaged"
    assert failure.reason.startswith("slot b failed its file check: 1 of ")
    assert "padding.bin: FAILED" in failure.reason
    assert not layout.launch_count.exists()


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ("missing-file", "padding.bin: FAILED open or read"),
        ("missing-list", "lost its file list .files.sha256"),
        ("garbled-list", ".files.sha256 is unreadable"),
        ("missing-marker", "has no .complete marker"),
    ],
)
def test_every_kind_of_slot_damage_is_named(tmp_path: Path, damage: str, why: str) -> None:
    layout = installed_vehicle(tmp_path)
    slot = layout.slot_dir("b")
    if damage == "missing-file":
        (slot / "padding.bin").unlink()
    elif damage == "missing-list":
        (slot / ".files.sha256").unlink()
    elif damage == "garbled-list":
        (slot / ".files.sha256").write_bytes(b"\0" * 64)
    else:
        (slot / ".complete").unlink()
    guard(layout)
    assert layout.active_slot() == "a"
    failure = layout.take_launch_failure()
    assert failure is not None
    assert (failure.code, why in failure.reason) == ("slot-damaged", True)


def test_a_slot_from_a_bundle_without_a_file_list_is_not_checked(tmp_path: Path) -> None:
    layout = installed_vehicle(tmp_path)
    (layout.slot_dir("b") / ".complete").write_text("2.0.0\n")  # installed by an older agent
    (layout.slot_dir("b") / "padding.bin").write_bytes(b"")
    guard(layout)
    assert layout.active_slot() == "b"


def test_a_damaged_slot_without_a_complete_previous_one_is_left_to_start(tmp_path: Path) -> None:
    layout = installed_vehicle(tmp_path)
    (layout.slot_dir("a") / ".complete").unlink()
    (layout.slot_dir("b") / "padding.bin").write_bytes(b"")
    result = guard(layout)
    assert layout.active_slot() == "b"
    assert "failed its file check" in result.stderr
    assert "no complete previous slot to restore" in result.stderr
