"""The ``edge-agent ota`` commands as an operator runs them, checked with the TUF client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Root

from edge_agent.ota.client import TufClient, verify_file
from edge_agent.ota.download import DownloadLimits, download
from fixtures.ota_world import RepoServer, agent_env, make_bundle

EDGE_AGENT = Path(sys.executable).parent / "edge-agent"


def ota(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EDGE_AGENT), "ota", *arguments],
        capture_output=True,
        text=True,
        env=agent_env(),
        timeout=120,
        check=False,
    )


def test_repo_commands_produce_a_repository_the_tuf_client_trusts(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    created = ota("repo", "init", str(repo), "--threshold", "targets=2", "--expiry-days", "root=30")
    assert created.returncode == 0, created.stderr
    assert sorted(p.name for p in (repo / "keys").iterdir()) == [
        "root-1.pem",
        "snapshot-1.pem",
        "targets-1.pem",
        "targets-2.pem",
        "timestamp-1.pem",
    ]
    assert (repo / "keys").stat().st_mode & 0o777 == 0o700
    root = Metadata[Root].from_file(str(repo / "metadata" / "root.json")).signed
    assert root.roles["targets"].threshold == 2
    assert 29 <= (root.expires - root.expires.now(root.expires.tzinfo)).days <= 30

    bundle = make_bundle(tmp_path / "b.bundle", "1.2.0", hardware_ids=["ecu-1", "ecu-2"])
    added = ota("repo", "add", str(repo), str(bundle), "--version", "1.2.0")
    assert added.returncode == 0, added.stderr
    assert ota("repo", "publish", str(repo)).returncode == 0

    server = RepoServer(repo)
    try:
        tuf_dir = tmp_path / "tuf"
        tuf_dir.mkdir()
        (tuf_dir / "root.json").write_bytes((repo / "metadata" / "1.root.json").read_bytes())
        client = TufClient(tuf_dir, f"{server.url}/metadata", f"{server.url}/targets", 5.0)
        target = client.resolve("edge-agent", "1.2.0")
        assert target.custom["hardware_ids"] == ["ecu-1", "ecu-2"]
        assert target.info.length == bundle.stat().st_size
        part = download(target.url, tmp_path / "dl.part", target.info.length, DownloadLimits())
        verify_file(target.info, part)
    finally:
        server.close()


def test_repo_add_refuses_a_version_that_is_not_the_manifest_version(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert ota("repo", "init", str(repo)).returncode == 0
    bundle = make_bundle(tmp_path / "b.bundle", "1.2.0")
    result = ota("repo", "add", str(repo), str(bundle), "--version", "1.3.0")
    assert result.returncode == 2
    assert "manifest version 1.2.0 is not --version 1.3.0" in result.stderr
    assert "Traceback" not in result.stderr


def test_provision_from_the_running_installation_gives_a_runnable_slot(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert ota("repo", "init", str(repo)).returncode == 0
    state = tmp_path / "state"
    root = str(repo / "metadata" / "root.json")
    done = ota("provision", "--state-dir", str(state), "--root", root)
    assert done.returncode == 0, done.stderr
    assert os.readlink(state / "ota" / "current") == "slots/a"
    assert (state / "ota" / "tuf" / "root.json").exists()
    version = subprocess.run(
        [str(state / "ota" / "current" / "bin" / "edge-agent"), "--version"],
        capture_output=True,
        text=True,
        env=agent_env(),
        timeout=60,
        check=True,
    )
    assert version.stdout.startswith("edge-agent ")
    again = ota("provision", "--state-dir", str(state), "--root", root)
    assert again.returncode == 2
    assert "already provisioned" in again.stderr
    status = json.loads(ota("status", "--json", "--state-dir", str(state)).stdout)
    assert status["active_slot"] == "a"
    assert status["state"]["phase"] == "idle"


@pytest.mark.slow
def test_bundle_build_makes_a_wheelhouse_bundle_that_installs_offline(tmp_path: Path) -> None:
    from edge_agent.ota.bundle import read_manifest
    from edge_agent.ota.installers import ABInstaller
    from edge_agent.ota.layout import OtaLayout

    project = Path(__file__).resolve().parents[2]
    out = tmp_path / "edge-agent-9.9.0.bundle"
    built = ota(
        "bundle", "build", "--version", "9.9.0", "--out", str(out), "--project", str(project)
    )
    assert built.returncode == 0, built.stderr
    manifest = read_manifest(out)
    assert (manifest.version, manifest.install) == ("9.9.0", "wheelhouse")
    layout = OtaLayout(tmp_path / "ota")
    ABInstaller(layout).install(out, "b", manifest, 2 * 1024**3)  # venv + pip --no-index
    launcher = layout.slot_dir("b") / "bin" / "edge-agent"
    result = subprocess.run(
        [str(launcher), "modules"], capture_output=True, text=True, timeout=120, check=True
    )
    assert "ota" in result.stdout
    assert "fast-path" in result.stdout
