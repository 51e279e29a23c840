"""The systemd units verify cleanly and the service's sandbox scores an exposure <= 2.0."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "systemd").glob("*.service"))
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="SKIPPED LOUDLY: systemd-analyze is not installed"
)


def fake_root(tmp_path: Path, unit: Path) -> Path:
    """A root directory with systemd's own units, the unit under test, and its executables."""
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    for line in unit.read_text().splitlines():
        match = re.match(r"^Exec\w+=[-@:+!]*(/\S+)", line)
        if match:
            target = root / match.group(1).lstrip("/")
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("#!/bin/sh\n")
                target.chmod(0o755)
    return root


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies_without_warnings(tmp_path: Path, unit: Path) -> None:
    root = fake_root(tmp_path, unit)
    result = subprocess.run(
        [ANALYZE or "", "verify", f"--root={root}", unit.name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_service_sandbox_exposure_is_at_most_two() -> None:
    result = subprocess.run(
        [ANALYZE or "", "security", "--offline=yes", str(ROOT / "systemd/edge-agent.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for edge-agent.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0


def test_service_has_the_contract_directives() -> None:
    text = (ROOT / "systemd/edge-agent.service").read_text()
    for directive in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "StateDirectory=edge-agent",
        "User=edge-agent",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "/ota/current/bin/edge-agent",
    ):
        assert directive in text, directive
    families = re.search(r"^RestrictAddressFamilies=(.*)$", text, re.MULTILINE)
    assert families
    assert "AF_CAN" in families.group(1).split()
    assert "PrivateNetwork=yes" not in text  # it would hide the CAN interfaces
