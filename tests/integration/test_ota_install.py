"""OTA end to end with a real agent under a systemd stand-in and a loopback TUF repository.

Happy path (download, verify, install in slot b, switch, restart into b, health gate, commit),
a version that fails the health gate (rolled back automatically), a job while driving (waits,
then activates when parked), and a download cut at half (resumed with Range).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.ota_scene import Scene
from fixtures.ota_world import RESTART_STATUS
from fixtures.waiting import wait_until_sync


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    world = Scene(tmp_path)
    yield world
    world.close()


def test_happy_path_installs_restarts_into_new_slot_and_commits(scene: Scene) -> None:
    scene.release("2.0.0")
    scene.start()
    first = scene.wait_running("1.0.0")
    assert first["running_slot"] == "a"

    job = scene.send_job("2.0.0")
    state = scene.wait_state("commit", job_id=job, phase="committed", finalised=True)

    now = scene.wait_running("2.0.0")
    assert now["running_slot"] == "b"
    assert now["pid"] != first["pid"]
    assert RESTART_STATUS in scene.systemd.exits  # restarted by "systemd" into the new link
    assert (scene.state_dir / "ota" / "current").readlink() == Path("slots/b")
    assert state["floor_version"] == "2.0.0"
    assert state["boot_attempts"] == 1
    records = scene.log()
    assert [(r["old_version"], r["new_version"], r["result"]) for r in records] == [
        ("1.0.0", "2.0.0", "committed")
    ]
    expected = {"downloading", "downloaded", "verified", "installed", "switched", "committed"}
    wait_until_sync(
        lambda: expected <= {s["phase"] for s in scene.statuses(job)},
        timeout=20.0,
        what="every phase on ota/status",
    )
    status = scene.cli_status()
    assert status["active_slot"] == "b"
    assert status["active_version"] == "2.0.0"
    assert status["state"]["phase"] == "committed"
    assert status["log"][-1]["result"] == "committed"
    assert not any((scene.state_dir / "ota" / "downloads").iterdir())


def test_version_failing_the_health_gate_is_rolled_back(scene: Scene) -> None:
    scene.release("2.0.0", env={"OTA_BENCH_FAIL": "1"})  # its bench module cannot start
    scene.start()
    job = scene.send_job("2.0.0")

    state = scene.wait_state("rollback", timeout=40, job_id=job, phase="rolled-back")
    assert state["code"] == "health-gate"
    assert "module bench is" in state["reason"]
    scene.wait_state("finalised", finalised=True)
    scene.wait_running("1.0.0")
    assert (scene.state_dir / "ota" / "current").readlink() == Path("slots/a")
    record = scene.log()[-1]
    assert (record["old_version"], record["new_version"], record["result"]) == (
        "1.0.0",
        "2.0.0",
        "rolled-back",
    )
    assert "health gate not passed" in record["reason"]
    wait_until_sync(
        lambda: any(s["phase"] == "rolled-back" for s in scene.statuses(job)),
        timeout=20.0,
        what="the rolled-back status",
    )


def test_job_while_driving_waits_then_activates_when_parked(scene: Scene) -> None:
    scene.set_speed(42.0)
    scene.release("2.0.0")
    scene.start()
    job = scene.send_job("2.0.0")

    waiting = scene.wait_state("waiting", job_id=job, phase="installed")
    wait_until_sync(
        lambda: scene.state().get("waiting", "").startswith("waiting: vehicle moving"),
        timeout=20.0,
        what="the vehicle-moving hold",
    )
    assert scene.state()["waiting"] == "waiting: vehicle moving (speed 42.0 km/h)"
    assert waiting["phase"] == "installed"
    wait_until_sync(
        lambda: any(
            s.get("waiting") == "waiting: vehicle moving (speed 42.0 km/h)"
            for s in scene.statuses(job)
        ),
        timeout=20.0,
        what="the waiting status on ota/status",
    )
    assert (scene.state_dir / "ota" / "current").readlink() == Path("slots/a")
    assert scene.ota_health()["running_version"] == "1.0.0"

    scene.set_speed(0.0)
    scene.wait_state("commit", job_id=job, phase="committed", finalised=True)
    scene.wait_running("2.0.0")


def test_download_cut_at_half_resumes_with_range_and_verifies_whole(scene: Scene) -> None:
    bundle = scene.release("2.0.0", padding=200_000)
    scene.server.target_mode = "cut-once"
    scene.start()
    job = scene.send_job("2.0.0")

    scene.wait_state("commit", job_id=job, phase="committed", finalised=True)
    target_requests = [r for r in scene.server.requests if r[0].startswith("/targets/")]
    assert target_requests[0][1] is None
    half = bundle.stat().st_size // 2
    assert target_requests[1][1] == f"bytes={half}-"
    scene.wait_running("2.0.0")
