"""Signed config targets: privileged settings through the OTA repository, keys and guard.

A real agent (under the systemd stand-in) with the OTA module and a TUF repository on a
loopback server. A config target made with ``edge-agent ota repo add-config`` arrives as a
job of kind ``config``, is verified like a bundle, waits until the vehicle is parked, and is
applied by the supervisor; replays, tampering, wrong hardware and configs the agent refuses
are each refused and logged, and the running configuration stays as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Targets

from edge_agent.cli.main import main as cli
from edge_agent.config.signed import SIGNED_FILE
from fixtures.ota_scene import Scene
from fixtures.ota_world import HARDWARE_ID
from fixtures.waiting import wait_until_sync

HEARTBEAT = "[modules.heartbeat]\n[modules.heartbeat.config]\ninterval_s = {interval}\n"


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    world = Scene(tmp_path)
    yield world
    world.close()


def release_config(scene: Scene, version: str, text: str, hardware_id: str = HARDWARE_ID) -> Path:
    source = scene.tmp / f"config-{version}.toml"
    source.write_text(text)
    repo = str(scene.repo.dir)
    assert (
        cli(
            [
                *("ota", "repo", "add-config", repo, str(source)),
                *("--version", version, "--hardware-id", hardware_id),
            ]
        )
        == 0
    )
    assert cli(["ota", "repo", "publish", repo]) == 0
    return source


def outcome(scene: Scene, job: str) -> dict[str, Any]:
    """The final status of config job ``job`` (applied or failed)."""

    def final() -> dict[str, Any] | None:
        done = [s for s in scene.statuses(job) if s.get("phase") in ("applied", "failed")]
        return done[-1] if done else None

    result: dict[str, Any] = wait_until_sync(final, timeout=30, what=f"config job {job} finished")
    return result


def modules(scene: Scene) -> dict[str, Any]:
    found: dict[str, Any] = scene.health().get("modules", {})
    return found


def test_a_signed_config_waits_for_parked_then_applies(scene: Scene) -> None:
    scene.set_speed(40.0)
    scene.start()
    release_config(scene, "1", HEARTBEAT.format(interval=0.5))
    job = scene.send_job("1", target="agent-config", kind="config")
    wait_until_sync(
        lambda: any(s.get("phase") == "waiting" for s in scene.statuses(job)),
        timeout=20,
        what="waiting",
    )
    waiting = next(s for s in scene.statuses(job) if s.get("phase") == "waiting")
    assert "vehicle moving" in waiting["waiting"]
    assert "heartbeat" not in modules(scene)

    scene.set_speed(0.0)
    status = outcome(scene, job)
    assert status["phase"] == "applied", status
    assert "added heartbeat" in status["reason"]
    wait_until_sync(
        lambda: modules(scene).get("heartbeat", {}).get("state") == "running", timeout=20, what="hb"
    )
    assert scene.health()["agent"]["config"]["signed_version"] == "1"
    stored = json.loads((scene.state_dir / SIGNED_FILE).read_text())
    assert stored == {"version": "1", "modules": {"heartbeat": {"config": {"interval_s": 0.5}}}}
    record = scene.log()[-1]
    assert (record["job_id"], record["result"]) == (job, "config-applied")
    assert record["new_version"] == "config 1"


def test_replayed_tampered_foreign_and_refused_configs_change_nothing(scene: Scene) -> None:
    scene.set_speed(0.0)
    scene.start()
    release_config(scene, "1", HEARTBEAT.format(interval=0.5))
    first = scene.send_job("1", target="agent-config", kind="config")
    assert outcome(scene, first)["phase"] == "applied"
    wait_until_sync(
        lambda: modules(scene).get("heartbeat", {}).get("state") == "running", timeout=20, what="hb"
    )

    replay = scene.send_job("1", target="agent-config", kind="config")
    assert outcome(scene, replay)["code"] == "target-rollback"

    release_config(scene, "2", HEARTBEAT.format(interval=0.25))
    tampered = next(scene.repo.targets_dir.glob("*.agent-config-2.config.json"))
    tampered.write_bytes(tampered.read_bytes().replace(b"0.25", b"9.99"))
    job = scene.send_job("2", target="agent-config", kind="config")
    assert outcome(scene, job)["code"] == "hash-mismatch"

    unsigned = scene.send_job("7", target="agent-config", kind="config")
    assert outcome(scene, unsigned)["code"] == "target-not-signed"

    release_config(scene, "3", HEARTBEAT.format(interval=0.25), hardware_id="other-ecu")
    job = scene.send_job("3", target="agent-config", kind="config")
    assert outcome(scene, job)["code"] == "wrong-hardware"

    release_config(scene, "4", HEARTBEAT.format(interval=-1))
    job = scene.send_job("4", target="agent-config", kind="config")
    refused = outcome(scene, job)
    assert refused["code"] == "config-refused"
    assert "modules.heartbeat.config.interval_s" in refused["reason"]

    assert scene.health()["agent"]["config"]["signed_version"] == "1"
    stored = json.loads((scene.state_dir / SIGNED_FILE).read_text())
    assert stored["modules"]["heartbeat"]["config"]["interval_s"] == 0.5
    results = [(r["job_id"], r["result"], r["code"]) for r in scene.log()]
    assert results[0] == (first, "config-applied", "")
    assert [code for _, result, code in results[1:]] == [
        "target-rollback",
        "hash-mismatch",
        "target-not-signed",
        "wrong-hardware",
        "config-refused",
    ]


def test_add_config_keeps_local_tables_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    assert cli(["ota", "repo", "init", str(repo)]) == 0
    source = tmp_path / "config.toml"
    for text, complaint in (
        ("[spool]\nmax_mb = 1\n", "signed config.spool: local table"),
        ('[agent]\nvehicle_id = "x"\n', "signed config.agent: local table"),
        ("[modules]\nheartbeat = 3\n", "signed config.modules: must be a table of tables"),
        ('version = "2"\n[modules.heartbeat]\n', "version '2' is not --version 1"),
    ):
        source.write_text(text)
        code = cli(
            [
                "ota",
                "repo",
                "add-config",
                str(repo),
                str(source),
                "--version",
                "1",
                "--hardware-id",
                HARDWARE_ID,
            ]
        )
        assert code == 2
        assert complaint in capsys.readouterr().err


def test_vehicles_follow_a_key_rotation_and_refuse_the_retired_key(scene: Scene) -> None:
    scene.set_speed(0.0)
    scene.start()
    repo = str(scene.repo.dir)
    assert cli(["ota", "repo", "rotate", repo, "targets"]) == 0
    assert cli(["ota", "repo", "rotate", repo, "root"]) == 0
    release_config(scene, "1", HEARTBEAT.format(interval=0.5))
    job = scene.send_job("1", target="agent-config", kind="config")
    assert outcome(scene, job)["phase"] == "applied"
    trusted = json.loads((scene.state_dir / "ota" / "tuf" / "root.json").read_text())
    assert trusted["signed"]["version"] == 3  # followed both rotations from the factory root

    # Someone holding only the retired targets key signs a new config: refused.
    retired = next((scene.repo.keys_dir / "retired").glob("*/targets-1.pem"))
    release_config(scene, "2", HEARTBEAT.format(interval=0.25))
    targets = scene.repo.load("targets", Targets)
    targets.signed.version += 1
    scene.repo.sign(targets, [CryptoSigner(load_pem_private_key(retired.read_bytes(), None))])
    scene.repo.write(targets)
    scene.repo.publish()
    job = scene.send_job("2", target="agent-config", kind="config")
    assert outcome(scene, job)["code"] == "unsigned-metadata"
    assert scene.health()["agent"]["config"]["signed_version"] == "1"
