"""state.json written by a newer version: the older agent settles it safely and keeps working.

A newer version mid-attempt leaves a phase this version does not know (and a later format)
when the vehicle ends up on an older slot (a rollback, a guard restore). The older agent must
not exit or break its OTA module (the one that finishes a rollback): it settles the attempt
from what the slots show, says why in ``ota status`` and health, and takes the next job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.ota.bundle import read_manifest
from edge_agent.ota.installers import ABInstaller
from edge_agent.ota.layout import OtaLayout
from fixtures.ota_scene import Scene
from fixtures.ota_world import make_bundle
from fixtures.waiting import wait_until_sync


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    world = Scene(tmp_path)
    yield world
    world.close()


def newer_state(**fields: Any) -> dict[str, Any]:
    """What a later version might write in the middle of its own kind of step."""
    return {
        "format": 2,
        "phase": "staging-delta",
        "job_id": "job-from-3",
        "target": "edge-agent",
        "version": "2.0.0",
        "from_slot": "a",
        "to_slot": "b",
        "from_version": "1.0.0",
        "finalised": False,
        "delta": {"base": "1.0.0", "chunks": 12},
        **fields,
    }


def test_unknown_phase_after_a_switch_is_a_trial_the_health_gate_commits(scene: Scene) -> None:
    layout = OtaLayout.for_state_dir(scene.state_dir)
    bundle = make_bundle(scene.bundles / "edge-agent-2.0.0.bundle", "2.0.0")
    ABInstaller(layout).install(bundle, "b", read_manifest(bundle), 1 << 30)
    layout.switch_to("b")
    layout.state_file.write_text(json.dumps(newer_state()))

    status = scene.cli_status()  # check=True: exit 0
    assert status["state"]["phase"] == "unknown"
    assert "phase 'staging-delta' is not known to this version" in status["read_warning"]
    assert "format 2 is newer than 1" in status["read_warning"]

    scene.start()
    state = scene.wait_state("commit", timeout=40, phase="committed", finalised=True)
    assert state["job_id"] == "job-from-3"
    assert state["floor_version"] == "2.0.0"
    scene.wait_running("2.0.0")
    assert [(r["result"], r["new_version"]) for r in scene.log()] == [("committed", "2.0.0")]


def test_unknown_phase_on_the_old_slot_is_abandoned_and_the_next_job_installs(
    scene: Scene,
) -> None:
    layout = OtaLayout.for_state_dir(scene.state_dir)
    layout.slot_dir("b").mkdir(parents=True)
    (layout.slot_dir("b") / "half-written").write_bytes(b"\0" * 100)
    layout.state_file.write_text(json.dumps(newer_state()))

    scene.start()
    state = scene.wait_state("abandoned", phase="failed", finalised=True, code="state-unknown")
    assert "staging-delta" in state["reason"]
    assert state["reason"].endswith("attempt abandoned; staying on slot a")
    assert not any(layout.slot_dir("b").iterdir())  # the newer version's half slot is wiped
    record = scene.log()[-1]
    assert (record["result"], record["code"]) == ("failed", "state-unknown")
    wait_until_sync(
        lambda: "staging-delta" in scene.ota_health().get("read_warning", ""),
        timeout=20.0,
        what="the reason in the module's health",
    )

    scene.release("2.0.0")
    job = scene.send_job("2.0.0")
    scene.wait_state("commit", timeout=40, job_id=job, phase="committed", finalised=True)
    scene.wait_running("2.0.0")
