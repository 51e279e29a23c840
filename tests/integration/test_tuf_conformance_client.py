"""``edge-agent-tuf-client``, the TUF conformance suite's client-under-test, on our own repository.

The upstream suite itself runs in .ci/run (scripts/tuf-conformance); this checks the CLI
protocol against a repository made by ``edge-agent ota repo`` and served over real HTTP:
init, refresh, download (stored, cached, refused when the served bytes are not the signed
ones, nothing unverified left behind) and exit statuses 0/1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge_agent.ota.conformance import stored_name
from edge_agent.ota.repo import target_path
from fixtures.ota_world import RepoServer, agent_env, make_bundle

BIN = Path(sys.executable).parent
CLIENT = BIN / "edge-agent-tuf-client"


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLIENT), *arguments], capture_output=True, text=True, timeout=120, check=False
    )


def ota(*arguments: str) -> None:
    done = subprocess.run(
        [str(BIN / "edge-agent"), "ota", *arguments],
        capture_output=True,
        text=True,
        env=agent_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_init_refresh_download_cache_and_refusal(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    ota("repo", "init", str(repo))
    bundle = make_bundle(tmp_path / "b.bundle", "1.2.0")
    ota("repo", "add", str(repo), str(bundle), "--version", "1.2.0")
    ota("repo", "publish", str(repo))
    server = RepoServer(repo)
    try:
        metadata, targets = tmp_path / "metadata", tmp_path / "targets"
        metadata.mkdir()
        common = ["--metadata-dir", str(metadata), "--metadata-url", f"{server.url}/metadata"]
        assert run("--metadata-dir", str(metadata), "refresh").returncode == 1  # no root yet
        root = repo / "metadata" / "1.root.json"
        assert run("--metadata-dir", str(metadata), "init", str(root)).returncode == 0
        assert run(*common, "refresh").returncode == 0
        assert {"root.json", "timestamp.json", "snapshot.json", "targets.json"} <= {
            p.name for p in metadata.iterdir()
        }
        path = target_path("edge-agent", "1.2.0")
        download = [
            *common,
            "--target-name",
            path,
            "--target-base-url",
            f"{server.url}/targets",
            "--target-dir",
            str(targets),
            "download",
        ]
        assert run(*download).returncode == 0
        stored = targets / stored_name(path)
        assert stored.read_bytes() == bundle.read_bytes()

        before = len(server.requests)
        assert run(*download).returncode == 0  # cached: metadata only, no target request
        assert not any(p.startswith("/targets/") for p, _ in server.requests[before:])

        stored.unlink()
        server.target_mode = "endless"  # more bytes than signed
        failed = run(*download)
        assert failed.returncode == 1
        assert "more than" in failed.stderr
        assert list(targets.iterdir()) == []  # nothing unverified kept

        missing = run(
            *common,
            "--target-name",
            "nope.bin",
            "--target-base-url",
            f"{server.url}/targets",
            "--target-dir",
            str(targets),
            "download",
        )
        assert missing.returncode == 1
    finally:
        server.close()
