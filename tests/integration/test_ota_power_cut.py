"""Power cut after an OTA install: the slot keeps every signed byte, or the guard rolls it back.

1. The installer under strace; a power cut modelled at the moment the slot's ``.complete``
   marker became durable drops every write not flushed by then (fixtures/power_cut.py). The
   slot must still hold every file of the bundle's signed list, byte for byte.
2. A real agent under the systemd stand-in with the launch guard: a slot that lost bytes
   anyway (damaged flash, or installed by a version that did not flush) is switched to, and
   the guard restores the previous slot before the damaged one starts; the restored agent
   records why (``slot-damaged``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.ota.bundle import BundleManifest, launcher_script, pack_bundle, read_manifest
from edge_agent.ota.installers import ABInstaller
from edge_agent.ota.layout import COMPLETE_MARKER, OtaLayout
from edge_agent.ota.slot_files import differences
from edge_agent.ota.state import OtaState, Phase, StateStore
from fixtures.ota_scene import Scene
from fixtures.ota_world import HARDWARE_ID, agent_env
from fixtures.power_cut import PowerCut, traced
from fixtures.real_parts import require

GUARD = Path(__file__).resolve().parents[2] / "systemd" / "edge-agent-launch-guard"
HOLD_S = 60.0


def nested_bundle(out: Path, version: str) -> Path:
    """A bundle whose payload has files in nested directories, as a real agent bundle does."""
    payload = out.parent / f"payload-{version}"
    for relative, content in {
        "bin/edge-agent": launcher_script(sys.executable),
        "lib/edge_agent/modules/fast_path/policy.py": "DECIDE = 1\n" * 500,
        "lib/edge_agent/data/vehicle.dbc": "BO_ 256 EgoMotion: 8 Vector__XXX\n" * 200,
        "VERSION": version,
    }.items():
        path = payload / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    (payload / "bin" / "edge-agent").chmod(0o755)
    return pack_bundle(payload, BundleManifest(version=version, hardware_ids=[HARDWARE_ID]), out)


def test_a_power_cut_right_after_install_keeps_every_signed_byte(tmp_path: Path) -> None:
    require("strace", "apt-get install strace")
    layout = OtaLayout(tmp_path / "state" / "ota")
    installer = ABInstaller(layout)
    first = nested_bundle(tmp_path / "1.0.0.bundle", "1.0.0")
    installer.install(first, "a", read_manifest(first), 1 << 30)
    layout.switch_to("a")
    bundle = nested_bundle(tmp_path / "2.0.0.bundle", "2.0.0")
    trace = tmp_path / "install.strace"
    install = (
        "import sys; from pathlib import Path; "
        "from edge_agent.ota.bundle import read_manifest; "
        "from edge_agent.ota.installers import ABInstaller; "
        "from edge_agent.ota.layout import OtaLayout; "
        "bundle = Path(sys.argv[2]); "
        "ABInstaller(OtaLayout(Path(sys.argv[1]))).install("
        "bundle, 'b', read_manifest(bundle), 1 << 30)"
    )
    traced([sys.executable, "-c", install, str(layout.root), str(bundle)], trace, agent_env())

    slot = layout.slot_dir("b")
    cut = PowerCut.from_trace(trace, cut_after_sync_of=slot, once_renamed_to=slot / COMPLETE_MARKER)
    lost = cut.apply(slot)

    assert layout.slot_manifest("b") is not None, lost  # the slot counts as installed ...
    assert differences(slot, read_manifest(bundle).files) == [], lost  # ... with every byte
    assert lost == []
    # And the launch guard, checking the trial slot against its signed list, lets it start.
    layout.switch_to("b")
    StateStore(layout.state_file).save(
        OtaState(phase=Phase.SWITCHED, from_slot="a", to_slot="b", job_id="j", version="2.0.0")
    )
    subprocess.run(["/bin/sh", str(GUARD), str(layout.root.parent)], check=True, timeout=30)
    assert layout.active_slot() == "b"
    assert not layout.launch_failed.exists()


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    world = Scene(tmp_path)
    yield world
    world.close()


def test_the_launch_guard_restores_the_previous_slot_when_the_new_one_lost_bytes(
    scene: Scene,
) -> None:
    scene.systemd.pre = ["/bin/sh", str(GUARD), str(scene.state_dir), "3"]
    scene.release("2.0.0", padding=300_000)
    scene.configure(hold_s={"installed": HOLD_S})
    scene.start()
    job = scene.send_job("2.0.0")
    scene.wait_state("installed", job_id=job, phase="installed")
    # The slot is complete; now it loses the tail of a file as unflushed writes would, and
    # the power goes: kill -9, and the agent starts again from slot a.
    padding = scene.state_dir / "ota" / "slots" / "b" / "padding.bin"
    with padding.open("r+b") as damaged:
        damaged.truncate(65_536)
    scene.configure(hold_s={})
    scene.systemd.kill9()

    # The restarted 1.0.0 resumes, switches to b; the guard checks b before it starts.
    state = scene.wait_state(
        "rollback by the guard", timeout=60, job_id=job, phase="rolled-back", finalised=True
    )
    assert state["code"] == "slot-damaged"
    assert "slot b failed its file check: 1 of " in state["reason"]
    assert "padding.bin: FAILED" in state["reason"]
    scene.wait_running("1.0.0")
    assert (scene.state_dir / "ota" / "current").readlink() == Path("slots/a")
    record = scene.log()[-1]
    assert (record["result"], record["code"]) == ("rolled-back", "slot-damaged")
    assert not (scene.state_dir / "ota" / "launch-failed").exists()
    assert json.loads(json.dumps(scene.cli_status()))["state"]["code"] == "slot-damaged"
    # The damaged slot never ran: every start after the switch was slot a's.
    assert scene.ota_health()["running_slot"] == "a"
