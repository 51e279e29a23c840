"""The RAUC adapter, against a stand-in executable that records its calls (not real RAUC)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.installers import RaucInstaller

STANDIN = Path(__file__).resolve().parent.parent / "fixtures" / "rauc_standin.py"


@pytest.fixture
def rauc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RaucInstaller:
    monkeypatch.setenv("RAUC_STANDIN_DIR", str(tmp_path))
    standin = [sys.executable, str(STANDIN)]
    return RaucInstaller(standin, [*standin, "reboot"])


def calls(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_install_activate_commit(rauc: RaucInstaller, tmp_path: Path) -> None:
    bundle = tmp_path / "rootfs-2.0.0.raucb"
    bundle.write_bytes(b"bundle")
    booted = rauc.active_slot()
    assert booted == "rootfs.0"
    rauc.install(bundle, "other", None, 0)
    rauc.activate(booted, "other")
    assert rauc.running_slot() == "rootfs.1"
    rauc.commit("other")
    assert calls(tmp_path) == [
        ["status", "--output-format=json"],
        ["install", str(bundle)],
        ["reboot"],
        ["status", "--output-format=json"],
        ["status", "mark-good", "booted"],
    ]


def test_rollback_marks_bad_and_reboots_once(rauc: RaucInstaller, tmp_path: Path) -> None:
    rauc.install(tmp_path / "b.raucb", "other", None, 0)
    rauc.activate("rootfs.0", "other")
    rauc.rollback("rootfs.0", "other")
    assert rauc.running_slot() == "rootfs.0"
    rauc.rollback("rootfs.0", "other")  # after a crash the step is repeated: no second mark-bad
    recorded = calls(tmp_path)
    assert recorded.count(["status", "mark-bad", "booted"]) == 1
    assert recorded.count(["reboot"]) == 2  # activation, then the rollback


def test_failing_rauc_is_an_install_failure_with_its_message(
    rauc: RaucInstaller, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAUC_STANDIN_FAIL", "install")
    with pytest.raises(OtaError) as caught:
        rauc.install(tmp_path / "x.raucb", "other", None, 0)
    assert caught.value.code is Code.INSTALL_FAILED
    assert "install failed on purpose" in str(caught.value)
