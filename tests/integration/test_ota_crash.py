"""kill -9 at every state of an install: after the restart the agent runs a working version and
the state machine resumes (ending committed) or finishes the rollback it was in.

The agent holds for a while right after it has durably entered the phase under test (the
test rig's installer, ``fixtures.ota_holding``, with its ``hold_s`` option); the test then
takes the hold out of agent.toml, so the restarted agent does not hold again, and kills the
agent with SIGKILL. The systemd stand-in
restarts ``ota/current/bin/edge-agent``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.ota_scene import Scene
from fixtures.waiting import wait_until_sync

HOLD_S = 60.0


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    world = Scene(tmp_path)
    yield world
    world.close()


def kill_in(scene: Scene, phase: str, job: str) -> None:
    """Wait until the agent holds in ``phase``, drop the hold from the config, kill -9."""
    scene.wait_state(f"phase {phase}", job_id=job, phase=phase)
    scene.configure(hold_s={})
    scene.systemd.kill9()


@pytest.mark.parametrize(
    "phase", ["downloading", "downloaded", "verified", "installing", "installed", "switched"]
)
def test_kill9_before_the_trial_resumes_and_commits(scene: Scene, phase: str) -> None:
    scene.release("2.0.0")
    scene.configure(hold_s={phase: HOLD_S})
    scene.start()
    job = scene.send_job("2.0.0")
    kill_in(scene, phase, job)

    state = scene.wait_state("commit", timeout=40, job_id=job, phase="committed", finalised=True)
    scene.wait_running("2.0.0")
    assert (scene.state_dir / "ota" / "current").readlink() == Path("slots/b")
    assert state["floor_version"] == "2.0.0"
    assert [r["result"] for r in scene.log()] == ["committed"]


def test_kill9_in_the_middle_of_the_download_resumes_with_range(scene: Scene) -> None:
    bundle = scene.release("2.0.0", padding=600_000)
    scene.server.target_mode = "throttle"
    scene.start()
    job = scene.send_job("2.0.0")
    part = scene.state_dir / "ota" / "downloads"
    wait_until_sync(
        lambda: any(p.stat().st_size > 100_000 for p in part.glob("*.part")),
        timeout=20.0,
        what="bytes",
    )
    scene.server.target_mode = "normal"
    scene.systemd.kill9()

    scene.wait_state("commit", timeout=40, job_id=job, phase="committed", finalised=True)
    ranges = [r[1] for r in scene.server.requests if r[0].startswith("/targets/")]
    assert ranges[0] is None
    assert ranges[1] is not None
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 100_000 <= resumed_at < bundle.stat().st_size
    scene.wait_running("2.0.0")


def test_kill9_during_the_trial_boot_counts_the_attempt_and_commits(scene: Scene) -> None:
    scene.release("2.0.0")
    scene.configure(gate={"stable_for_s": 3.0})
    scene.start()
    job = scene.send_job("2.0.0")
    scene.wait_running("2.0.0")
    scene.wait_state("trial", job_id=job, phase="switched", boot_attempts=1)
    scene.systemd.kill9()

    state = scene.wait_state("commit", timeout=40, job_id=job, phase="committed", finalised=True)
    assert state["boot_attempts"] == 2
    scene.wait_running("2.0.0")


def test_kill9_after_commit_was_saved_finishes_the_commit(scene: Scene) -> None:
    scene.release("2.0.0")
    scene.configure(hold_s={"committed": HOLD_S})
    scene.start()
    job = scene.send_job("2.0.0")
    state = scene.wait_state("commit saved", job_id=job, phase="committed", finalised=False)
    assert state["floor_version"] == "2.0.0"
    scene.configure(hold_s={})
    scene.systemd.kill9()

    scene.wait_state("finalised", job_id=job, phase="committed", finalised=True)
    scene.wait_running("2.0.0")
    assert [r["result"] for r in scene.log()] == ["committed"]


def test_kill9_in_the_middle_of_a_rollback_finishes_it(scene: Scene) -> None:
    scene.release("2.0.0", env={"OTA_BENCH_FAIL": "1"})
    scene.configure(hold_s={"rolled-back": HOLD_S}, gate={"timeout_s": 3.0})
    scene.start()
    job = scene.send_job("2.0.0")
    scene.wait_state("rollback saved", timeout=40, job_id=job, phase="rolled-back", finalised=False)
    assert (scene.state_dir / "ota" / "current").readlink() == Path("slots/b")
    scene.configure(hold_s={})
    scene.systemd.kill9()

    state = scene.wait_state("finalised", job_id=job, phase="rolled-back", finalised=True)
    assert state["code"] == "health-gate"
    scene.wait_running("1.0.0")
    assert (scene.state_dir / "ota" / "current").readlink() == Path("slots/a")
    assert [r["result"] for r in scene.log()] == ["rolled-back"]


def test_trial_that_keeps_crashing_is_rolled_back(scene: Scene) -> None:
    scene.release("2.0.0")
    scene.configure(gate={"stable_for_s": 60.0, "timeout_s": 120.0, "max_boot_attempts": 2})
    scene.start()
    job = scene.send_job("2.0.0")
    for attempt in (1, 2):
        scene.wait_state(f"trial {attempt}", job_id=job, phase="switched", boot_attempts=attempt)
        scene.wait_running("2.0.0")
        scene.systemd.kill9()

    state = scene.wait_state(
        "rollback", timeout=40, job_id=job, phase="rolled-back", finalised=True
    )
    assert state["code"] == "boot-loop"
    assert "started 2 times without passing the health gate" in state["reason"]
    scene.wait_running("1.0.0")
    record = scene.log()[-1]
    assert (record["result"], record["code"]) == ("rolled-back", "boot-loop")


GUARD = Path(__file__).resolve().parents[2] / "systemd" / "edge-agent-launch-guard"


def test_a_slot_that_cannot_start_python_is_rolled_back_by_the_launch_guard(
    scene: Scene,
) -> None:
    # The unit runs systemd/edge-agent-launch-guard before every start (ExecStartPre=).
    scene.systemd.pre = ["/bin/sh", str(GUARD), str(scene.state_dir), "3"]
    scene.release("2.0.0", broken_launcher=True)
    scene.start()
    job = scene.send_job("2.0.0")
    # Switched to 2.0.0, whose launcher exits 127 before any Python runs: only the guard
    # can notice. After 3 such starts it restores slot a; 1.0.0 finishes the rollback.
    state = scene.wait_state(
        "rollback by the guard", timeout=60, job_id=job, phase="rolled-back", finalised=True
    )
    assert state["code"] == "launch-failed"
    assert "did not start" in state["reason"]
    assert state["boot_attempts"] == 0  # no trial boot ever reached the agent
    scene.wait_running("1.0.0")
    assert (scene.state_dir / "ota" / "current").readlink() == Path("slots/a")
    assert scene.systemd.exits.count(127) == 3
    record = scene.log()[-1]
    assert (record["result"], record["code"]) == ("rolled-back", "launch-failed")
    assert not (scene.state_dir / "ota" / "launch-failed").exists()
    assert not (scene.state_dir / "ota" / "launch-count").exists()
    statuses = [s for s in scene.statuses(job) if s.get("phase") == "rolled-back"]
    assert statuses
    assert statuses[-1]["code"] == "launch-failed"
