"""One test per attack on the update path, each against a real agent and a loopback repository.

Every test ends the same way: the job is FAILED with the attack's reason code in
``state.json``, the install log and ``ota/status``; the agent still runs 1.0.0 in the same
process; and nothing outside the inactive slot (and the OTA bookkeeping) changed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Snapshot, TargetFile, Targets

from edge_agent.ota.repo import target_path
from fixtures.ota_scene import Scene
from fixtures.ota_world import make_bundle, make_hostile_bundle
from fixtures.waiting import wait_until_sync


@pytest.fixture
def make_scene(tmp_path: Path) -> Iterator[Callable[..., Scene]]:
    scenes: list[Scene] = []

    def build(**options: Any) -> Scene:
        scene = Scene(tmp_path, **options)
        scenes.append(scene)
        return scene

    yield build
    for scene in scenes:
        scene.close()


def attack(scene: Scene, version: str, code: str, reason: str) -> None:
    """Send the job, then check the refusal everywhere and that nothing else changed."""
    scene.start()
    before = scene.wait_running("1.0.0")
    starts = scene.systemd.starts
    fingerprint = scene.software_fingerprint()
    job = scene.send_job(version)
    state = scene.wait_state("refusal", job_id=job, phase="failed", finalised=True)
    assert state["code"] == code, state["reason"]
    assert reason in state["reason"]
    record = scene.log()[-1]
    assert (record["job_id"], record["result"], record["code"]) == (job, "failed", code)
    assert reason in record["reason"]
    wait_until_sync(
        lambda: any(s.get("code") == code for s in scene.statuses(job)), timeout=20.0, what="status"
    )
    after = scene.wait_running("1.0.0")
    assert after["pid"] == before["pid"]
    assert scene.systemd.starts == starts
    assert (scene.state_dir / "ota" / "current").readlink() == Path("slots/a")
    assert scene.software_fingerprint() == fingerprint
    assert not list(scene.tmp.rglob("escaped*"))


def _sign_targets_with(scene: Scene, bundle: Path, version: str, signers: list[Any]) -> None:
    """A new targets version listing ``bundle``, signed by ``signers`` (not the repository's)."""
    targets = scene.repo.load("targets", Targets)
    path = target_path("edge-agent", version)
    info = TargetFile.from_file(path, str(bundle), ["sha256"])
    info.unrecognized_fields["custom"] = {
        "edge_agent": {"version": version, "hardware_ids": ["bench-ecu"], "kind": "ab"}
    }
    targets.signed.targets[path] = info
    targets.signed.version += 1
    scene.repo.sign(targets, signers)
    scene.repo.write(targets)
    shutil.copy(bundle, scene.repo.targets_dir / f"{info.hashes['sha256']}.{path}")
    scene.repo.publish()  # snapshot and timestamp keys are the repository's (online keys)


def test_unsigned_target(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene()
    bundle = make_bundle(scene.bundles / "evil.bundle", "2.0.0")
    shutil.copy(bundle, scene.repo.targets_dir / "edge-agent-2.0.0.bundle")  # uploaded, unsigned
    attack(scene, "2.0.0", "target-not-signed", "not in the signed targets metadata")


def test_wrong_key(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene()
    bundle = make_bundle(scene.bundles / "evil.bundle", "2.0.0")
    _sign_targets_with(scene, bundle, "2.0.0", [CryptoSigner.generate_ed25519()])
    attack(scene, "2.0.0", "unsigned-metadata", "targets was signed by 0/1 keys")


def test_signatures_below_threshold(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene(thresholds={"targets": 2})
    bundle = make_bundle(scene.bundles / "evil.bundle", "2.0.0")
    _sign_targets_with(scene, bundle, "2.0.0", scene.repo.signers("targets")[:1])
    attack(scene, "2.0.0", "unsigned-metadata", "targets was signed by 1/2 keys")


def test_metadata_version_rollback(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene()
    scene.release("2.0.0")
    old_timestamp = (scene.repo.metadata_dir / "timestamp.json").read_bytes()
    scene.repo.publish()
    scene.start()
    primer = scene.send_job("1.5.0")  # makes the vehicle trust the newest timestamp
    scene.wait_state("primer", job_id=primer, phase="failed", finalised=True)
    (scene.repo.metadata_dir / "timestamp.json").write_bytes(old_timestamp)  # replayed
    attack(scene, "2.0.0", "metadata-rollback", "must be >=")


def test_target_version_rollback(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene()
    scene.release("0.9.0")  # genuinely signed, but older than what runs
    attack(scene, "0.9.0", "target-rollback", "0.9.0 is not newer than 1.0.0")


def test_expired_timestamp_freeze(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene()
    bundle = make_bundle(scene.bundles / "edge-agent-2.0.0.bundle", "2.0.0")
    scene.repo.add(bundle, "2.0.0")
    scene.repo.publish(timestamp_expires=datetime.now(UTC) - timedelta(hours=1))
    attack(scene, "2.0.0", "expired-metadata", "timestamp.json is expired")


def test_mismatched_snapshot_mix_and_match(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene()
    old_snapshot = Metadata.from_bytes((scene.repo.metadata_dir / "snapshot.json").read_bytes())
    scene.release("2.0.0")
    version = scene.repo.load("snapshot", Snapshot).signed.version
    assert isinstance(old_snapshot.signed, Snapshot)
    old_snapshot.signed.version = version  # an older repository state under the new number
    scene.repo.sign(old_snapshot, scene.repo.signers("snapshot"))
    (scene.repo.metadata_dir / f"{version}.snapshot.json").write_bytes(old_snapshot.to_bytes())
    attack(scene, "2.0.0", "metadata-mismatch", "length or hash mismatch")


def test_target_longer_than_declared_endless_data(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene()
    scene.release("2.0.0")
    scene.server.target_mode = "endless"
    attack(scene, "2.0.0", "target-too-long", "more than the")


def test_hash_mismatch(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene()
    scene.release("2.0.0")
    (served,) = scene.repo.targets_dir.glob("*.edge-agent-2.0.0.bundle")
    served.write_bytes(os.urandom(served.stat().st_size))  # same length, other bytes
    attack(scene, "2.0.0", "hash-mismatch", "edge-agent-2.0.0.bundle")


def test_stalled_server_slow_retrieval(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene()
    scene.release("2.0.0")
    scene.server.target_mode = "stall"
    attack(scene, "2.0.0", "download-stalled", "no data for 1 s")


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("dotdot", "path leaves the slot"),
        ("absolute", "absolute path"),
        ("symlink", "link to"),
        ("device", "device node"),
    ],
)
def test_hostile_archive(make_scene: Callable[..., Scene], kind: str, reason: str) -> None:
    scene = make_scene()
    bundle = make_hostile_bundle(scene.bundles / f"{kind}.bundle", "2.0.0", kind)
    scene.release("2.0.0", bundle=bundle)
    attack(scene, "2.0.0", "unsafe-archive", reason)


def test_bundle_for_another_hardware_id(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene()
    scene.release("2.0.0", hardware_ids=["other-ecu"])
    attack(scene, "2.0.0", "wrong-hardware", "for hardware other-ecu, not bench-ecu")


def test_oversized_bundle(make_scene: Callable[..., Scene]) -> None:
    scene = make_scene(ota={"max_bundle_bytes": 20_000})
    scene.release("2.0.0", padding=60_000)
    attack(scene, "2.0.0", "bundle-too-large", "exceeds the cap of 20000 bytes")
    assert not [r for r in scene.server.requests if r[0].startswith("/targets/")]
